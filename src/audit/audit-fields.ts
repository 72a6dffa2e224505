import type { DescEnum } from "@bufbuild/protobuf";
import { AuditActionSchema, AuditOutcomeSchema } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRoleSchema } from "../../gen/telemed/patient/v1/common_pb.js";
import { type AuditEntryFields, isoMicros, storableText } from "./audit-chain.ts";
import type { AuditEntryDraft } from "./audit-entry.ts";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The stored (and hashed) form of a draft that happened at `eventTime`: enums become
 * their lower-case short names (`ActorRole.DOCTOR` is `doctor`), the subject id is
 * lowercased, strings are made storable. A subject that is not a UUID is a
 * programming error and throws a TypeError: the column is `uuid`, and one bad entry
 * must not fail the other entries of its batch.
 */
export function auditFieldsOf(draft: AuditEntryDraft, eventTime: Date): AuditEntryFields {
  const subject = draft.subjectPatientId === undefined ? null : draft.subjectPatientId.toLowerCase();
  if (subject !== null && !uuidPattern.test(subject)) {
    throw new TypeError("audit entry: subjectPatientId must be a UUID");
  }
  return {
    eventTime: isoMicros(eventTime),
    actor: storableText(draft.actor),
    actorRole: storedName(ActorRoleSchema, draft.actorRole),
    subjectPatientId: subject,
    proxy: draft.proxy,
    action: storedName(AuditActionSchema, draft.action),
    resource: storableText(draft.resource),
    outcome: storedName(AuditOutcomeSchema, draft.outcome),
    rpc: storableText(draft.rpc),
    requestId: storableText(draft.requestId),
    clientAddress: storableText(draft.clientAddress),
    reason: storableText(draft.reason),
  };
}

/** Each enum's stored names by number, made once: every audit entry needs three. */
const storedNames = new WeakMap<DescEnum, ReadonlyMap<number, string>>();

/** `ActorRole.DOCTOR` to `doctor`; a number the contract does not know is stored as its digits. */
export function storedName(schema: DescEnum, value: number): string {
  let names = storedNames.get(schema);
  if (names === undefined) {
    names = new Map(schema.values.map((known) => [known.number, known.localName.toLowerCase()]));
    storedNames.set(schema, names);
  }
  return names.get(value) ?? String(value);
}

/** `doctor` back to `ActorRole.DOCTOR`; 0 (UNSPECIFIED) for a name the contract does not know. */
export function enumFromStored(schema: DescEnum, name: string): number {
  return schema.values.find((value) => value.localName.toLowerCase() === name)?.number ?? 0;
}
