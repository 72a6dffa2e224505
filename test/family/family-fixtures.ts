import { randomUUID } from "node:crypto";
import { create, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { FamilyService } from "../../gen/telemed/patient/v1/family_service_pb.js";
import type { AuditEntryDraft } from "../../src/audit/audit-entry.ts";
import type { Principal } from "../../src/auth/principal.ts";
import { familyService, type FamilyServiceDeps } from "../../src/family/family-handlers.ts";
import type { PatientFields } from "../../src/patients/patient.ts";
import type { Clock } from "../../src/shared/clock.ts";
import { handlerContext } from "../support/handler-context.ts";

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  #now: Date;
  constructor(start: string) {
    this.#now = new Date(start);
  }
  now(): Date {
    return new Date(this.#now.getTime());
  }
  set(iso: string): void {
    this.#now = new Date(iso);
  }
}

/** An audit sink that keeps what it is given, notes whether it ran in a transaction, and can be made to fail. */
export class RecordingAudit {
  readonly drafts: AuditEntryDraft[] = [];
  readonly inTransaction: boolean[] = [];
  failing = false;

  async recordWithin(em: EntityManager, drafts: readonly AuditEntryDraft[]): Promise<void> {
    this.inTransaction.push(em.isInTransaction());
    if (this.failing) throw new Error("the audit log is unavailable");
    this.drafts.push(...drafts);
  }
}

type Methods = typeof FamilyService.method;
type MethodName = keyof Methods;
type Input<K extends MethodName> = MessageInitShape<Methods[K]["input"]>;
type Output<K extends MethodName> = MessageShape<Methods[K]["output"]>;

/** Calls FamilyService handlers directly, as the pipeline would after authenticating `principal`. */
export function familyCaller(deps: FamilyServiceDeps) {
  const service = familyService(deps) as Record<string, (request: unknown, context: unknown) => Promise<unknown>>;
  return async function call<K extends MethodName>(
    principal: Principal | undefined,
    name: K,
    request: Input<K>,
    values: { requestId?: string; clientAddress?: string } = {},
  ): Promise<Output<K>> {
    const method = FamilyService.method[name];
    const handler = service[name];
    if (handler === undefined) throw new Error(`FamilyService.${String(name)} is not implemented`);
    const context = handlerContext(method, { principal, ...values });
    const result = await handler(create(method.input as never, request as never), context);
    return create(method.output as never, result as never) as Output<K>;
  };
}

/** A complete patient profile with a unique email. */
export function profile(birthDate: { year: number; month: number; day: number }, email?: string): PatientFields {
  return {
    legalName: { given: "Meera", family: "Iyer" },
    birthDate,
    sex: "female",
    contact: { email: email ?? `meera.${randomUUID()}@example.com`, phone: "", address: undefined },
    preferredLanguage: "en-IN",
    upiId: "",
    insurance: undefined,
    emergencyContacts: [],
  };
}

/** CreateDependent's `dependent` in protobuf init form. */
export function dependentJson(birthDate: { year: number; month: number; day: number }, email?: string) {
  return {
    legalName: { givenName: "Anu", familyName: "Iyer" },
    birthDate,
    contact: { email: email ?? `anu.${randomUUID()}@example.com` },
  };
}
