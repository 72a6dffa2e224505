import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DateSchema } from "../../gen/google/type/date_pb.js";
import {
  type Patient as PatientProto,
  PatientSchema,
  Sex as SexProto,
} from "../../gen/telemed/patient/v1/patient_pb.js";
import type { Patient, PatientDraft, Sex } from "./patient.ts";

const sexToProto: Record<Sex, SexProto> = {
  unspecified: SexProto.UNSPECIFIED,
  female: SexProto.FEMALE,
  male: SexProto.MALE,
  other: SexProto.OTHER,
  undisclosed: SexProto.UNDISCLOSED,
};
const sexFromProto = new Map<SexProto, Sex>(Object.entries(sexToProto).map(([k, v]) => [v, k as Sex]));

/** The resource name of a patient, `patients/{id}`. */
export function patientName(id: string): string {
  return `patients/${id}`;
}

/** The id in a resource name already checked by protovalidate (`^patients/[A-Za-z0-9_-]{1,64}$`). */
export function patientIdFromName(name: string): string {
  return name.slice("patients/".length);
}

/** The etag of a stored version (AIP-154); opaque to clients. */
export function etagOf(version: number): string {
  return `v${version}`;
}

/** The version an etag stands for, or undefined for an etag we never issued (which cannot match). */
export function versionFromEtag(etag: string): number | undefined {
  const match = /^v(\d{1,15})$/.exec(etag);
  return match ? Number(match[1]) : undefined;
}

/** Domain profile to the API resource. */
export function patientToProto(patient: Patient): PatientProto {
  return create(PatientSchema, {
    name: patientName(patient.id),
    legalName: { givenName: patient.legalName.given, familyName: patient.legalName.family },
    birthDate: create(DateSchema, patient.birthDate),
    sex: sexToProto[patient.sex],
    contact: {
      email: patient.contact.email,
      phone: patient.contact.phone,
      address: patient.contact.address
        ? { ...patient.contact.address, lines: [...patient.contact.address.lines] }
        : undefined,
    },
    preferredLanguage: patient.preferredLanguage,
    upiId: patient.upiId,
    insurance: patient.insurance
      ? {
          provider: patient.insurance.provider,
          policyNumber: patient.insurance.policyNumber,
          memberId: patient.insurance.memberId,
          validUntil: patient.insurance.validUntil ? create(DateSchema, patient.insurance.validUntil) : undefined,
        }
      : undefined,
    emergencyContacts: patient.emergencyContacts.map((c) => ({ ...c })),
    createTime: timestampFromDate(patient.createTime),
    updateTime: timestampFromDate(patient.updateTime),
    etag: etagOf(patient.version),
  });
}

/** API resource to the fields a client may set; identity and output-only fields are dropped. */
export function patientDraftFromProto(proto: PatientProto): PatientDraft {
  const address = proto.contact?.address;
  const insurance = proto.insurance;
  return {
    legalName: { given: proto.legalName?.givenName ?? "", family: proto.legalName?.familyName ?? "" },
    birthDate: proto.birthDate
      ? { year: proto.birthDate.year, month: proto.birthDate.month, day: proto.birthDate.day }
      : undefined,
    sex: sexFromProto.get(proto.sex) ?? "unspecified",
    contact: {
      email: (proto.contact?.email ?? "").toLowerCase(),
      phone: proto.contact?.phone ?? "",
      address: address
        ? {
            lines: [...address.lines],
            locality: address.locality,
            region: address.region,
            postalCode: address.postalCode,
            regionCode: address.regionCode,
          }
        : undefined,
    },
    preferredLanguage: proto.preferredLanguage,
    upiId: proto.upiId,
    insurance: insurance
      ? {
          provider: insurance.provider,
          policyNumber: insurance.policyNumber,
          memberId: insurance.memberId,
          validUntil: insurance.validUntil
            ? { year: insurance.validUntil.year, month: insurance.validUntil.month, day: insurance.validUntil.day }
            : undefined,
        }
      : undefined,
    emergencyContacts: proto.emergencyContacts.map((c) => ({
      displayName: c.displayName,
      relationship: c.relationship,
      phone: c.phone,
    })),
  };
}
