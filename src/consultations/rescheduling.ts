import type { CallAudit } from "../audit/call-audit.ts";
import { invalidArgument, notFound } from "../shared/domain-errors.ts";
import type { Mode } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import { type Consultation, consultationNameOf } from "./consultation.ts";
import { type Caller, requireParticipantOrStaff } from "./consultation-caller.ts";
import { modeToApi, requireEtag } from "./consultation-mapping.ts";
import { type ConsultationDeps, holdRequestId } from "./consultation-deps.ts";
import { requireBeforeCutoff, requireFutureSlot } from "./consultation-rules.ts";
import { transition } from "./consultation-states.ts";

/** A move to another slot of the same doctor. */
export interface RescheduleRequest {
  readonly patientId: string;
  readonly consultationId: string;
  readonly doctorId: string;
  readonly slotId: string;
  readonly etag: string;
  readonly requestId: string;
}

/**
 * RescheduleConsultation: hold the new slot, then, with the consultation locked,
 * confirm it at the Doctor Service under a booking reference of its own and move the
 * row (version, notification and audit entry in the same transaction). Only after that
 * commit is the old appointment cancelled: if anything fails before, the patient keeps
 * the slot they had, and the new appointment (or hold) is given back.
 */
export async function reschedule(
  deps: ConsultationDeps,
  request: RescheduleRequest,
  caller: Caller,
  audit: CallAudit | undefined,
): Promise<Consultation> {
  const { store, doctor, clock, config } = deps;
  const current = await store.repository.get(request.consultationId);
  if (current === undefined || current.patientId !== request.patientId) {
    throw notFound("Consultation");
  }
  requireParticipantOrStaff(caller, current);
  if (current.rescheduleRequestId === request.requestId) {
    if (current.slotId === request.slotId) return current; // a retry of the move that happened
    throw invalidArgument("request_id", "was already used for a move to another slot");
  }
  if (request.doctorId !== current.doctorId) {
    throw invalidArgument("slot", "must be a slot of the same doctor; book a new consultation for another doctor");
  }
  if (request.slotId === current.slotId) throw invalidArgument("slot", "is the consultation's current slot");
  checkAllowed(current, request, caller, clock.now().getTime(), config.changeCutoffSeconds * 1000);

  const slot = `doctors/${request.doctorId}/slots/${request.slotId}`;
  const held = await doctor.hold(
    slot,
    config.holdTtlSeconds,
    modeToApi(current.mode) as unknown as Mode,
    holdRequestId(request.patientId, request.requestId, "reschedule"),
    "slot",
  );
  let confirmed: string | undefined;
  let previous: string | undefined;
  let moved: Consultation;
  try {
    requireFutureSlot(clock.now().getTime(), held.startTime.getTime());
    moved = await store.change(request.patientId, request.consultationId, audit, async (locked) => {
      checkAllowed(locked, request, caller, clock.now().getTime(), config.changeCutoffSeconds * 1000);
      const reference = `${consultationNameOf(locked)}/reschedules/${locked.rescheduleCount + 1}`;
      confirmed = (await doctor.confirm(slot, held.holdId, reference, `patients/${locked.patientId}`)).name;
      previous = locked.appointment;
      return {
        changes: {
          state: transition(locked.state, "reschedule"),
          slotId: request.slotId,
          startTime: held.startTime,
          endTime: held.endTime,
          appointment: confirmed,
          holdId: null,
          rescheduled: { requestId: request.requestId },
          bookedAt: clock.now(),
        },
        news: "rescheduled",
        guardianPatientId: caller.guardianPatientId,
      };
    });
  } catch (error) {
    if (confirmed !== undefined) {
      await doctor.cancel(confirmed, "Rescheduling failed").catch((e: unknown) => warn(deps, e, "new appointment"));
    } else {
      await doctor.release(slot, held.holdId);
    }
    throw error;
  }
  if (previous !== undefined) {
    // The old slot goes back to the doctor's calendar. If this fails the doctor sees a stale
    // booking; the patient's consultation is already correct.
    await doctor.cancel(previous, "Rescheduled").catch((e: unknown) => warn(deps, e, "old appointment"));
  }
  return moved;
}

function checkAllowed(
  consultation: Consultation,
  request: RescheduleRequest,
  caller: Caller,
  nowMs: number,
  cutoffMs: number,
): void {
  transition(consultation.state, "reschedule");
  requireEtag(request.etag, consultation.version);
  if (caller.principal.role === "patient") requireBeforeCutoff(nowMs, consultation.startTime.getTime(), cutoffMs);
}

function warn(deps: ConsultationDeps, error: unknown, what: string): void {
  deps.logger.warn(
    { err: { type: error instanceof Error ? error.constructor.name : typeof error }, what },
    "cancelling an appointment at the Doctor Service after a reschedule failed",
  );
}
