import type { EntityManager } from "@mikro-orm/postgresql";
import type { CallAudit } from "../audit/call-audit.ts";
import type { ConsultationSummary } from "../../gen/telemed/patient/v1/record_pb.js";
import { DomainError } from "../shared/domain-errors.ts";
import { type Consultation, slotNameOf } from "./consultation.ts";
import { type Caller, requireDoctorSide, requireParticipantOrStaff } from "./consultation-caller.ts";
import { type ConsultationDeps, sealText } from "./consultation-deps.ts";
import { requireEtag } from "./consultation-mapping.ts";
import { joinOpenTime, requireBeforeCutoff, requireStarted } from "./consultation-rules.ts";
import { transition } from "./consultation-states.ts";
import type { Decision } from "./consultation-store.ts";
import type { ConsultationSummaries, StoredSummary } from "./consultation-summaries.ts";

/** Which consultation a change is about, and the etag the caller read (empty: any). */
export interface Target {
  readonly patientId: string;
  readonly consultationId: string;
  readonly etag: string;
}

const cancelNote: Record<string, string> = {
  patient: "Cancelled by the patient",
  guardian: "Cancelled by the patient's guardian",
  doctor: "Cancelled by the doctor",
  admin: "Cancelled by the platform",
  service: "Cancelled by the doctor's service",
};

/**
 * Cancel (TST-PT003-3) and the doctor side (start, complete, no-show, summary). Each
 * runs with the consultation locked (ConsultationStore.change): the state machine
 * decides, the Doctor Service is told, and the row, the patient's notification and the
 * audit entry commit together.
 */
export class ConsultationLifecycle {
  readonly #deps: ConsultationDeps;
  readonly #summaries: ConsultationSummaries;

  constructor(deps: ConsultationDeps, summaries: ConsultationSummaries) {
    this.#deps = deps;
    this.#summaries = summaries;
  }

  /** Patients (or their guardian) until the cut-off; the doctor, a service or an admin at any time before it ends. */
  cancel(target: Target, reason: string, caller: Caller, audit: CallAudit | undefined): Promise<Consultation> {
    const { clock, config, doctor } = this.#deps;
    return this.#change(
      target,
      audit,
      async (current) => {
        requireParticipantOrStaff(caller, current);
        const state = transition(current.state, "cancel");
        if (caller.principal.role === "patient") {
          requireBeforeCutoff(clock.now().getTime(), current.startTime.getTime(), config.changeCutoffSeconds * 1000);
        }
        // The patient's words stay with us: the Doctor Service gets who cancelled, not why.
        if (current.appointment !== undefined) {
          await doctor.cancel(current.appointment, cancelNote[caller.actor.role] ?? "");
        } else if (current.holdId !== undefined) {
          await doctor.release(slotNameOf(current), current.holdId);
        }
        return {
          changes: {
            state,
            holdId: null,
            cancellation: {
              principal: caller.actor.principal,
              role: caller.actor.role,
              reasonSealed: sealText(this.#deps.secretBox, reason, current.id) ?? null,
              code: null,
              time: clock.now(),
            },
          },
          news: "cancelled",
          guardianPatientId: caller.guardianPatientId,
        };
      },
      caller,
    );
  }

  /** SCHEDULED -> ONGOING, from when the join window opens. */
  start(target: Target, caller: Caller, audit: CallAudit | undefined): Promise<Consultation> {
    const { clock, config, doctor } = this.#deps;
    return this.#change(
      target,
      audit,
      async (current) => {
        requireDoctorSide(caller, current);
        const state = transition(current.state, "start");
        const now = clock.now();
        if (now.getTime() < joinOpenTime(current.startTime.getTime(), config.joinOpensBeforeSeconds * 1000)) {
          throw new DomainError(
            "failed-precondition",
            "TOO_EARLY_TO_START",
            "This consultation cannot be started yet.",
          );
        }
        if (current.appointment !== undefined) await doctor.start(current.appointment);
        return { changes: { state, actualStartTime: now }, news: "started" };
      },
      caller,
    );
  }

  /** ONGOING -> COMPLETED, with the summary when it is ready. */
  complete(
    target: Target,
    summary: ConsultationSummary | undefined,
    caller: Caller,
    audit: CallAudit | undefined,
    requestId: string,
  ): Promise<Consultation> {
    const { clock, doctor } = this.#deps;
    return this.#change(
      target,
      audit,
      async (current) => {
        requireDoctorSide(caller, current);
        const state = transition(current.state, "complete");
        if (current.appointment !== undefined) await doctor.complete(current.appointment);
        const now = clock.now();
        return {
          changes: { state, actualEndTime: now },
          news: "completed",
          alsoWithin:
            summary === undefined
              ? undefined
              : (em, updated) => this.#summaries.put(em, updated, summary, caller.actor, requestId, now),
        };
      },
      caller,
    );
  }

  /** SCHEDULED -> NO_SHOW, once the start time has passed. */
  markNoShow(target: Target, caller: Caller, audit: CallAudit | undefined): Promise<Consultation> {
    const { clock } = this.#deps;
    return this.#change(
      target,
      audit,
      async (current) => {
        requireDoctorSide(caller, current);
        const state = transition(current.state, "mark_no_show");
        requireStarted(clock.now().getTime(), current.startTime.getTime());
        return { changes: { state }, news: "no_show" };
      },
      caller,
    );
  }

  /** Attaches (or replaces) the summary of an ONGOING or COMPLETED consultation; a retry with the same request id attaches once. */
  async attachSummary(
    target: Target,
    summary: ConsultationSummary,
    requestId: string,
    caller: Caller,
    audit: CallAudit | undefined,
  ): Promise<{ consultation: Consultation; summary: StoredSummary }> {
    const { clock, store } = this.#deps;
    const consultation = await this.#change(
      target,
      audit,
      async (current, em) => {
        requireDoctorSide(caller, current);
        transition(current.state, "attach_summary");
        const existing = await this.#summaries.find(em, current.id);
        if (existing?.attachRequestId === requestId) return undefined;
        return {
          changes: {},
          news: "summary",
          alsoWithin: (inTx, updated) =>
            this.#summaries.put(inTx, updated, summary, caller.actor, requestId, clock.now()),
        };
      },
      caller,
    );
    const stored = await this.#summaries.find(store.repository.fork(), consultation.id);
    if (stored === undefined) throw new Error("an attached summary cannot be read");
    return { consultation, summary: stored };
  }

  #change(
    target: Target,
    audit: CallAudit | undefined,
    decide: (current: Consultation, em: EntityManager) => Promise<Decision | undefined>,
    caller?: Caller,
  ): Promise<Consultation> {
    return this.#deps.store.change(target.patientId, target.consultationId, audit, async (current, em) => {
      // Who may see it before which version it is: another doctor learns nothing from an etag error.
      if (caller !== undefined) requireParticipantOrStaff(caller, current);
      requireEtag(target.etag, current.version);
      return decide(current, em);
    });
  }
}
