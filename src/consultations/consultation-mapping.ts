import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import {
  type Consultation as ConsultationProto,
  Consultation_State,
  ConsultationMode,
  ConsultationSchema,
} from "../../gen/telemed/patient/v1/consultation_pb.js";
import { DomainError } from "../shared/domain-errors.ts";
import { type Consultation, consultationNameOf, slotNameOf } from "./consultation.ts";
import type { ConsultationActorRole, ConsultationModeName } from "./consultation-entity.ts";
import { changeDeadline, joinOpenTime } from "./consultation-rules.ts";
import type { ConsultationState } from "./consultation-states.ts";

/** What the resource shows besides the row: the reason (opened) and the configured windows. */
export interface ConsultationView {
  readonly reason: string;
  /** The cancellation's reason, opened; "" for none. */
  readonly cancelReason: string;
  readonly changeCutoffMs: number;
  readonly joinOpensBeforeMs: number;
}

const stateToProto: Record<ConsultationState, Consultation_State> = {
  requested: Consultation_State.REQUESTED,
  scheduled: Consultation_State.SCHEDULED,
  ongoing: Consultation_State.ONGOING,
  completed: Consultation_State.COMPLETED,
  cancelled: Consultation_State.CANCELLED,
  no_show: Consultation_State.NO_SHOW,
};

const modeToProto: Record<ConsultationModeName, ConsultationMode> = {
  video: ConsultationMode.VIDEO,
  audio: ConsultationMode.AUDIO,
  chat: ConsultationMode.CHAT,
};

const roleToProto: Record<ConsultationActorRole, ActorRole> = {
  patient: ActorRole.PATIENT,
  guardian: ActorRole.GUARDIAN,
  doctor: ActorRole.DOCTOR,
  admin: ActorRole.ADMIN,
  service: ActorRole.SERVICE,
  system: ActorRole.SYSTEM,
};

/** `v<version>`, as every resource of this service. */
export function etagOf(version: number): string {
  return `v${version}`;
}

/** ABORTED (ETAG_MISMATCH) when the caller's etag is set and is not the current one (AIP-154). */
export function requireEtag(etag: string, version: number, resource = "consultation"): void {
  if (etag !== "" && etag !== etagOf(version)) {
    throw new DomainError(
      "aborted",
      "ETAG_MISMATCH",
      `The ${resource} changed since it was read. Get it again and retry with the new etag.`,
    );
  }
}

/** The domain state of an API state (for filters). */
export function stateFromProto(state: Consultation_State): ConsultationState {
  const found = (Object.entries(stateToProto) as [ConsultationState, Consultation_State][]).find(
    ([, p]) => p === state,
  );
  if (found === undefined) throw new Error(`unknown consultation state ${state}`);
  return found[0];
}

/** The stored mode of an API mode (validated as defined and not UNSPECIFIED). */
export function modeFromProto(mode: ConsultationMode): ConsultationModeName {
  const found = (Object.entries(modeToProto) as [ConsultationModeName, ConsultationMode][]).find(([, p]) => p === mode);
  if (found === undefined) throw new Error(`unknown consultation mode ${mode}`);
  return found[0];
}

/** The API's mode for a stored one (the Doctor Service's Mode has the same numbers). */
export function modeToApi(mode: ConsultationModeName): ConsultationMode {
  return modeToProto[mode];
}

/** The API resource of a consultation. */
export function consultationToProto(consultation: Consultation, view: ConsultationView): ConsultationProto {
  const startMs = consultation.startTime.getTime();
  return create(ConsultationSchema, {
    name: consultationNameOf(consultation),
    doctor: `doctors/${consultation.doctorId}`,
    slot: slotNameOf(consultation),
    mode: modeToProto[consultation.mode],
    reason: view.reason,
    state: stateToProto[consultation.state],
    startTime: timestampFromMs(startMs),
    endTime: timestampFromMs(consultation.endTime.getTime()),
    doctorDisplayName: consultation.doctorDisplayName,
    price: { amountMinor: BigInt(consultation.price.amountMinor), currencyCode: consultation.price.currencyCode },
    bookedBy: { principal: consultation.bookedBy.principal, role: roleToProto[consultation.bookedBy.role] },
    appointment: consultation.appointment ?? "",
    actualStartTime: ts(consultation.actualStartTime),
    actualEndTime: ts(consultation.actualEndTime),
    summaryRecord:
      consultation.summaryRecordId === undefined
        ? ""
        : `patients/${consultation.patientId}/records/${consultation.summaryRecordId}`,
    cancellation:
      consultation.cancellation === undefined
        ? undefined
        : {
            actor: {
              principal: consultation.cancellation.actor.principal,
              role: roleToProto[consultation.cancellation.actor.role],
            },
            reason: view.cancelReason,
            cancelTime: timestampFromMs(consultation.cancellation.time.getTime()),
          },
    rescheduleCount: consultation.rescheduleCount,
    changeDeadline: timestampFromMs(changeDeadline(startMs, view.changeCutoffMs)),
    joinOpenTime: timestampFromMs(joinOpenTime(startMs, view.joinOpensBeforeMs)),
    createTime: timestampFromMs(consultation.createdAt.getTime()),
    updateTime: timestampFromMs(consultation.updatedAt.getTime()),
    etag: etagOf(consultation.version),
  });
}

function ts(date: Date | undefined) {
  return date === undefined ? undefined : timestampFromMs(date.getTime());
}

/** The ids in `patients/{p}/consultations/{c}` (validated by the contract's pattern). */
export function consultationIdsOf(name: string): { patientId: string; consultationId: string } {
  const parts = name.split("/");
  return { patientId: parts[1] ?? "", consultationId: parts[3] ?? "" };
}

/** The ids in `doctors/{d}/slots/{s}` (validated by the contract's pattern). */
export function slotIdsOf(name: string): { doctorId: string; slotId: string } {
  const parts = name.split("/");
  return { doctorId: parts[1] ?? "", slotId: parts[3] ?? "" };
}
