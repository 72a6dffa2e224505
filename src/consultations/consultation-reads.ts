import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ParticipantRole } from "../../gen/telemed/doctor/v1/doctor_pb.js";
import {
  type Consultation as ConsultationProto,
  type ConsultationJoinDetails,
  ConsultationJoinDetails_Participant,
  ConsultationJoinDetailsSchema,
} from "../../gen/telemed/patient/v1/consultation_pb.js";
import type { ListConsultationsRequest } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { DomainError, notFound } from "../shared/domain-errors.ts";
import { type Consultation, consultationNameOf } from "./consultation.ts";
import { type Caller, requireParticipantOrStaff } from "./consultation-caller.ts";
import { type ConsultationDeps, openText } from "./consultation-deps.ts";
import { consultationToProto, stateFromProto } from "./consultation-mapping.ts";
import { requireJoinOpen } from "./consultation-rules.ts";

const defaultPageSize = 25;

/** Reads of consultations: one (through the status cache), lists, and join details. */
export class ConsultationReads {
  readonly #deps: ConsultationDeps;

  constructor(deps: ConsultationDeps) {
    this.#deps = deps;
  }

  /**
   * The API resource of a consultation, its reason opened; `reason` skips the opening
   * when the caller knows the stored text (a booking: the request's reason is part of
   * what makes a retry the same booking).
   */
  toProto(consultation: Consultation, reason?: string): ConsultationProto {
    const { config, secretBox } = this.#deps;
    return consultationToProto(consultation, {
      reason: reason ?? openText(secretBox, consultation.reasonSealed, consultation.id),
      cancelReason: openText(secretBox, consultation.cancellation?.reasonSealed, consultation.id),
      changeCutoffMs: config.changeCutoffSeconds * 1000,
      joinOpensBeforeMs: config.joinOpensBeforeSeconds * 1000,
    });
  }

  /** GetConsultation: the patient's (or their guardian's, or an admin's) consultation. */
  get(patientId: string, consultationId: string): Promise<Consultation> {
    return this.#deps.store.read(patientId, consultationId);
  }

  /**
   * ListConsultations: one patient's, or with `patients/-` every patient's for an admin
   * and the caller's own consultations for a doctor. A doctor sees only their own
   * consultations, whichever parent they name.
   */
  async list(request: ListConsultationsRequest, caller: Caller): Promise<{ items: Consultation[]; next: string }> {
    const patient = request.parent.slice("patients/".length);
    const patientId = patient === "-" ? undefined : patient;
    if (patientId === undefined && caller.principal.role !== "admin" && caller.principal.role !== "doctor") {
      throw notFound("Patient");
    }
    let doctorId = request.doctor === "" ? undefined : request.doctor.slice("doctors/".length);
    if (caller.principal.role === "doctor") {
      if (caller.doctorId === undefined || (doctorId !== undefined && doctorId !== caller.doctorId)) {
        return { items: [], next: "" };
      }
      doctorId = caller.doctorId;
    }
    const states = request.states.map(stateFromProto);
    const startFrom = request.startTime ? new Date(timestampMs(request.startTime)) : undefined;
    const startBefore = request.endTime ? new Date(timestampMs(request.endTime)) : undefined;
    const scope = JSON.stringify([
      "consultations",
      request.parent,
      doctorId ?? "",
      states,
      startFrom?.getTime() ?? 0,
      startBefore?.getTime() ?? 0,
    ]);
    const cursor = decodePageToken(scope, request.pageToken);
    const pageSize = request.pageSize || defaultPageSize;
    const rows = await this.#deps.store.repository.list({
      patientId,
      doctorId,
      states,
      startFrom,
      startBefore,
      pageSize,
      after: cursor === undefined ? undefined : { startMs: Number(cursor.t), id: String(cursor.i) },
    });
    const items = rows.slice(0, pageSize);
    const last = items.at(-1);
    const next =
      rows.length > pageSize && last !== undefined
        ? encodePageToken(scope, { t: last.startTime.getTime(), i: last.id })
        : "";
    return { items, next };
  }

  /**
   * GetConsultationJoinDetails: only for its participants (the patient or the guardian
   * attending, and its doctor), only while SCHEDULED or ONGOING, and only from the
   * join window's opening; the link itself comes from the Doctor Service.
   */
  async joinDetails(patientId: string, consultationId: string, caller: Caller): Promise<ConsultationJoinDetails> {
    const { store, clock, config, doctor } = this.#deps;
    const consultation =
      caller.principal.role === "doctor"
        ? await store.repository.get(consultationId)
        : await store.read(patientId, consultationId);
    if (consultation === undefined || consultation.patientId !== patientId) throw notFound("Consultation");
    requireParticipantOrStaff(caller, consultation);
    if (caller.principal.role !== "doctor" && caller.principal.role !== "patient") throw notFound("Consultation");
    if (consultation.state !== "scheduled" && consultation.state !== "ongoing") {
      throw new DomainError(
        "failed-precondition",
        "CONSULTATION_NOT_JOINABLE",
        "This consultation is not open for joining.",
      );
    }
    requireJoinOpen(clock.now().getTime(), consultation.startTime.getTime(), config.joinOpensBeforeSeconds * 1000);
    if (consultation.appointment === undefined) throw notFound("Consultation");
    const asDoctor = caller.principal.role === "doctor";
    const info = await doctor.joinInfo(
      consultation.appointment,
      asDoctor ? ParticipantRole.DOCTOR : ParticipantRole.PATIENT,
    );
    return create(ConsultationJoinDetailsSchema, {
      name: `${consultationNameOf(consultation)}/joinDetails`,
      joinUri: info.joinUri,
      accessToken: info.accessToken,
      participant: asDoctor ? ConsultationJoinDetails_Participant.DOCTOR : ConsultationJoinDetails_Participant.PATIENT,
      validFromTime: info.validFromTime,
      expireTime: info.expireTime,
    });
  }
}
