import type { EntityManager } from "@mikro-orm/postgresql";
import type { Insight, Insight_State } from "../../gen/telemed/patient/v1/insight_pb.js";
import type { CallAudit } from "../audit/call-audit.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import type { Clock } from "../shared/clock.ts";
import { DomainError, etagMismatch, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { InsightDerivation } from "./insight-derivation.ts";
import { etagOf, insightName, insightToProto, statesOf } from "./insight-mapping.ts";
import type { InsightStore } from "./insight-store.ts";

const defaultPageSize = 25;

/**
 * The use cases behind InsightService. The pipeline has decided who may act for the
 * patient (and audits reads); every query is scoped to that patient, so another
 * patient's insight answers NOT_FOUND like a missing one. Listing derives the
 * patient's insights first, so what is listed is never older than the records.
 */
export class Insights {
  readonly #em: () => EntityManager;
  readonly #store: InsightStore;
  readonly #derivation: InsightDerivation;
  readonly #clock: Clock;

  constructor(em: () => EntityManager, store: InsightStore, derivation: InsightDerivation, clock: Clock) {
    this.#em = em;
    this.#store = store;
    this.#derivation = derivation;
    this.#clock = clock;
  }

  /** One page of the patient's insights in `states`, earliest due date first. */
  async list(
    patientId: string,
    request: { states: readonly Insight_State[]; pageSize: number; pageToken: string },
  ): Promise<{ insights: Insight[]; next: string }> {
    if (!isUuid(patientId)) throw notFound("Patient");
    const states = statesOf(request.states);
    const scope = `insights|${patientId}|${[...states].sort().join(",")}`;
    const cursor = decodePageToken(scope, request.pageToken);
    // A later page continues the first page's answer; deriving again could shift it.
    if (cursor === undefined) await this.#derivation.refresh(patientId);
    const pageSize = request.pageSize === 0 ? defaultPageSize : request.pageSize;
    const rows = await this.#store.page(this.#em(), {
      patientId,
      states,
      after: cursor === undefined ? undefined : { dueDate: String(cursor.d), id: String(cursor.i) },
      limit: pageSize + 1,
    });
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    const next =
      rows.length > pageSize && last !== undefined ? encodePageToken(scope, { d: last.due_day, i: last.id }) : "";
    return { insights: page.map((row) => insightToProto(row, this.#derivation.explanationOf(row))), next };
  }

  /** One insight of the patient, in whatever state; NOT_FOUND otherwise. */
  async get(patientId: string, insightId: string): Promise<Insight> {
    if (!isUuid(patientId) || !isUuid(insightId)) throw notFound("Insight");
    const row = await this.#store.get(this.#em(), patientId, insightId);
    if (row === undefined) throw notFound("Insight");
    return insightToProto(row, this.#derivation.explanationOf(row));
  }

  /**
   * ACTIVE to DISMISSED, audited in the same transaction. The row stays, so the rule
   * does not raise it again for the same record. ABORTED when `etag` is stale;
   * FAILED_PRECONDITION when the insight is not ACTIVE.
   */
  async dismiss(patientId: string, insightId: string, etag: string, audit: CallAudit | undefined): Promise<Insight> {
    if (!isUuid(patientId) || !isUuid(insightId)) throw notFound("Insight");
    const row = await this.#em().transactional(async (tx) => {
      const locked = await this.#store.get(tx, patientId, insightId, true);
      if (locked === undefined) throw notFound("Insight");
      if (etag !== "" && etag !== etagOf(locked)) throw etagMismatch("Insight");
      if (locked.state !== "active") {
        throw new DomainError(
          "failed-precondition",
          "INVALID_STATE_TRANSITION",
          `Only an ACTIVE insight can be dismissed; this one is ${locked.state.toUpperCase()}.`,
        );
      }
      await this.#store.close(tx, insightId, "dismissed", this.#clock.now());
      await audit?.within(tx, { resource: insightName(patientId, insightId) });
      return (await this.#store.get(tx, patientId, insightId)) ?? locked;
    });
    return insightToProto(row, this.#derivation.explanationOf(row));
  }
}
