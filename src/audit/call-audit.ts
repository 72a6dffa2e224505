import type { Message } from "@bufbuild/protobuf";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { type AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { actorRoleOf } from "../auth/principal.ts";
import { actingForKey, clientAddressKey, principalKey, requestIdKey } from "../rpc/context-keys.ts";
import { methodPath } from "../rpc/rpc-table.ts";
import type { AtomicChange } from "./audit-batch-writer.ts";
import type { AuditEntryDraft } from "./audit-entry.ts";

/** Where audit entries go: the AuditLog (group commit), or inside a caller's transaction. */
export interface AuditSink {
  record(draft: AuditEntryDraft): Promise<void>;
  recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void>;
  /** A data change and the entries in one statement (`AuditLog.recordWith`), where the sink can. */
  recordWith?(drafts: readonly AuditEntryDraft[], change: AtomicChange): Promise<boolean>;
}

/**
 * The audit trail of one call, on `context.values` for handlers. The pipeline records
 * denials, failures and reads itself; a handler that changes data records its entry
 * with `within(em)` inside the same transaction as the change, which also tells the
 * pipeline not to record it again.
 */
export class CallAudit {
  readonly #sink: AuditSink;
  readonly #context: HandlerContext;
  readonly #request: Message;
  readonly action: AuditAction;
  recorded = false;

  /** Where this call's entries go (so a change can take them into its own statement: `AuditSink.recordWith`). */
  get sink(): AuditSink {
    return this.#sink;
  }

  constructor(sink: AuditSink, context: HandlerContext, request: Message, action: AuditAction) {
    this.#sink = sink;
    this.#context = context;
    this.#request = request;
    this.action = action;
  }

  /** Records a successful change inside the caller's open transaction. */
  async within(em: EntityManager, overrides: Partial<AuditEntryDraft> = {}): Promise<void> {
    await this.#sink.recordWithin(em, [this.draft(AuditOutcome.SUCCESS, "", overrides)]);
    this.recorded = true;
  }

  /** Records an entry through the group-committed log and waits until it is durable. */
  async record(outcome: AuditOutcome, reason: string, overrides: Partial<AuditEntryDraft> = {}): Promise<void> {
    await this.#sink.record(this.draft(outcome, reason, overrides));
    this.recorded = true;
  }

  draft(outcome: AuditOutcome, reason: string, overrides: Partial<AuditEntryDraft> = {}): AuditEntryDraft {
    return callAuditDraft(this.#context, this.#request, this.action, outcome, reason, overrides);
  }
}

/**
 * Commits a data change with the SUCCESS entry of each call (with its `overrides`) in
 * one statement (`AuditSink.recordWith`), when `sink` can and every call has a
 * CallAudit: true once committed, each call then marked recorded. False when nothing
 * was written (the sink cannot, a call has no CallAudit, or the statement failed: a
 * conflict, or a head other processes kept moving); the caller takes another path,
 * and the database's error, which may quote key values, goes no further.
 */
export async function recordCallsWith(
  sink: AuditSink | undefined,
  calls: readonly { readonly audit: unknown; readonly overrides: Partial<AuditEntryDraft> }[],
  change: () => AtomicChange,
): Promise<boolean> {
  if (sink?.recordWith === undefined || !calls.every(({ audit }) => audit instanceof CallAudit)) return false;
  const audits = calls.map(({ audit }) => audit as CallAudit);
  const drafts = calls.map(({ overrides }, i) => (audits[i] as CallAudit).draft(AuditOutcome.SUCCESS, "", overrides));
  const written = await sink.recordWith(drafts, change()).catch(() => false);
  if (written) for (const audit of audits) audit.recorded = true;
  return written;
}

export const callAuditKey = createContextKey<CallAudit | undefined>(undefined, { description: "call audit" });

/** The audit entry of a call as the pipeline knows it: who (token), for whom (access check), what, where from. */
export function callAuditDraft(
  context: HandlerContext,
  request: Message | undefined,
  action: AuditAction,
  outcome: AuditOutcome,
  reason: string,
  overrides: Partial<AuditEntryDraft> = {},
): AuditEntryDraft {
  const principal = context.values.get(principalKey);
  const actingFor = context.values.get(actingForKey);
  // The patient the request named (a refused call has no actingFor; the caller passes it).
  const namedPatient = actingFor?.patientId ?? overrides.subjectPatientId;
  return {
    actor: principal?.name ?? "",
    actorRole:
      principal === undefined
        ? ActorRole.UNSPECIFIED
        : actingFor?.proxy
          ? ActorRole.GUARDIAN
          : actorRoleOf(principal.role),
    // Without a patient in the request, a patient acts on their own account.
    subjectPatientId: namedPatient ?? principal?.patientId,
    proxy: actingFor?.proxy ?? false,
    action,
    resource: resourceOf(request) || defaultResource(namedPatient, principal?.accountId),
    outcome,
    rpc: methodPath(context.method),
    requestId: context.values.get(requestIdKey),
    clientAddress: context.values.get(clientAddressKey),
    reason,
    ...overrides,
  };
}

/** The resource a request names (`name`, else `parent`); ids only, never content. */
function resourceOf(request: Message | undefined): string {
  if (request === undefined) return "";
  const fields = request as unknown as { name?: unknown; parent?: unknown };
  if (typeof fields.name === "string" && fields.name !== "") return fields.name;
  if (typeof fields.parent === "string") return fields.parent;
  return "";
}

/** Without a name in the request: the patient acted on, else the caller's own account. */
function defaultResource(patientId: string | undefined, accountId: string | undefined): string {
  if (patientId !== undefined) return `patients/${patientId}`;
  return accountId === undefined ? "" : `accounts/${accountId}`;
}
