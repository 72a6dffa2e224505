import { create } from "@bufbuild/protobuf";
import { type GetPatientResponse, GetPatientResponseSchema } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { deepFreeze } from "../shared/deep-freeze.ts";
import type { Patient } from "./patient.ts";
import { patientToProto } from "./patient-mapping.ts";

const answers = new WeakMap<Patient, GetPatientResponse>();

/**
 * The GetPatient answer for a profile: one frozen message per profile object. The
 * repository hands out the same frozen profile while its row is unchanged, so repeated
 * reads answer the same message and the server encodes it once
 * (src/server/frozen-encodings.ts) instead of once per call.
 */
export function getPatientResponse(patient: Patient): GetPatientResponse {
  let answer = answers.get(patient);
  if (answer === undefined) {
    answer = deepFreeze(create(GetPatientResponseSchema, { patient: patientToProto(patient) }));
    if (Object.isFrozen(patient)) answers.set(patient, answer);
  }
  return answer;
}
