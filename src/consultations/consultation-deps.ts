import { createHash } from "node:crypto";
import type { AuditSink } from "../audit/call-audit.ts";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { Logger } from "../observability/logger.ts";
import type { Clock } from "../shared/clock.ts";
import type { ConsultationConfig } from "./consultation-config.ts";
import type { ConsultationStore } from "./consultation-store.ts";
import type { DoctorAccounts } from "./doctor-accounts.ts";
import type { DoctorGateway } from "./doctor-gateway.ts";

/** What the consultation use cases share. */
export interface ConsultationDeps {
  readonly store: ConsultationStore;
  readonly doctor: DoctorGateway;
  readonly doctors: DoctorAccounts;
  readonly clock: Clock;
  readonly config: ConsultationConfig;
  /** Seals the reason, summaries and comments at rest (the service's secret key). */
  readonly secretBox: SecretBox;
  readonly logger: Logger;
  /**
   * The audit log, for entries written in a consultation's own transaction: bookings
   * append theirs in groups (booking-writer.ts). Without it each entry goes through its CallAudit.
   */
  readonly audit?: AuditSink;
}

/**
 * The Doctor Service request id of a hold, derived from the patient and their request
 * id: a retried booking holds with the same id (and gets the same hold back), while
 * two patients who happened to pick the same request id never share one.
 */
export function holdRequestId(patientId: string, requestId: string, purpose = "book"): string {
  const hex = createHash("sha256").update(`${purpose}:${patientId}:${requestId}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Seals free text of a consultation (bound to its id, so it opens nowhere else); undefined for none. */
export function sealText(box: SecretBox, text: string, consultationId: string): string | undefined {
  return text === "" ? undefined : box.seal(text, `consultation:${consultationId}`);
}

/** Opens what `sealText` sealed; "" for none. */
export function openText(box: SecretBox, sealed: string | undefined, consultationId: string): string {
  return sealed === undefined ? "" : box.open(sealed, `consultation:${consultationId}`);
}
