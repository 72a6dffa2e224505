import type { HandlerContext } from "@connectrpc/connect";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import type { AuditEntryDraft } from "../audit/audit-entry.ts";
import { actorRoleOf } from "./principal.ts";
import type { Account } from "./account-store.ts";
import { accountActor } from "./auth-mapping.ts";

/**
 * Records an authentication event for `account` (or an unknown one) and waits for it.
 * Before log-in there is no principal, so the actor is the account the email or
 * token named: the patient then sees the failures on their own access view.
 */
export async function auditAuthentication(
  context: HandlerContext,
  outcome: AuditOutcome,
  reason: string,
  account: Account | undefined,
): Promise<void> {
  await context.values.get(callAuditKey)?.record(outcome, reason, accountFields(account));
}

export function accountFields(account: Account | undefined): Partial<AuditEntryDraft> {
  if (account === undefined) return {};
  return {
    actor: accountActor(account),
    actorRole: actorRoleOf(account.role),
    subjectPatientId: account.patientId ?? undefined,
    resource: `accounts/${account.id}`,
  };
}

export { AuditOutcome };
