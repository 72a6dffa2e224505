import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { GetPatientResponseSchema, type PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { applyFieldMask, fieldMaskViolations, populatedPaths } from "../rpc/field-mask.ts";
import { FrozenAnswers } from "../rpc/frozen-answers.ts";
import { decodePageToken, encodePageToken } from "../rpc/page-token.ts";
import { DomainError, invalidArgument } from "../shared/domain-errors.ts";
import type { Clock } from "../shared/clock.ts";
import { patientDraftFromProto, patientIdFromName, patientToProto, versionFromEtag } from "./patient-mapping.ts";
import type { Patient } from "./patient.ts";
import type { PatientRepository } from "./patient-repository.ts";
import { completeProfile } from "./patient-rules.ts";
import { creationEntryOf } from "./patient-create-batch.ts";

/** Top-level fields a client may change; a mask may also name any field inside them. */
const writableFields = new Set([
  "legal_name",
  "birth_date",
  "sex",
  "contact",
  "preferred_language",
  "upi_id",
  "insurance",
  "emergency_contacts",
]);
/** Fields that say which resource and which version, not what changes: a mask naming them is not refused, they are just not data. */
const controlFields = new Set(["name", "etag"]);
const defaultPageSize = 25;
/** GetPatient's answers, one per profile object (the repository shares one while its row is unchanged). */
const getPatientAnswers = new FrozenAnswers((patient: Patient) =>
  create(GetPatientResponseSchema, { patient: patientToProto(patient) }),
);
/** How often an update without etag re-reads after losing a race to another writer. */
const updateAttempts = 3;

/** What else happens when a profile is deleted: its login ends (owned by the auth context). */
export interface ProfileDeletion {
  /** Disables the patient's account inside the deleting transaction; the account id, if there is one. */
  disableAccountWithin(em: EntityManager, patientId: string): Promise<string | undefined>;
  /** After commit: ends every session of that account on every instance. */
  endSessions(accountId: string): Promise<void>;
}

/**
 * PatientService handlers: protobuf in, protobuf out; the rules live in the domain and
 * repository. Changes commit together with their audit entry (`CallAudit.within`).
 */
export function patientService(
  repository: PatientRepository,
  clock: Clock,
  deletion?: ProfileDeletion,
): Partial<ServiceImpl<typeof PatientService>> {
  return {
    async createPatient(request, context) {
      const draft = patientDraftFromProto(request.patient ?? create(PatientSchema));
      const fields = completeProfile(draft, clock.now());
      const audit = context.values.get(callAuditKey);
      const patient = await repository.create(fields, request.requestId || undefined, audit);
      // Concurrent creates share one INSERT (patient-create-batch.ts), with their creation
      // entries when that statement could take them; otherwise (a conflict: a taken email,
      // a replay) the entry follows its commit, and a crash in between would leave a
      // profile without it.
      if (audit !== undefined && !audit.recorded) {
        await audit.record(AuditOutcome.SUCCESS, "", creationEntryOf(patient.id));
      }
      return { patient: patientToProto(patient) };
    },

    async getPatient(request) {
      return getPatientAnswers.of(await repository.get(patientIdFromName(request.name)));
    },

    async updatePatient(request, context) {
      const changes = request.patient ?? create(PatientSchema);
      const id = patientIdFromName(changes.name);
      const expectedVersion = changes.etag === "" ? undefined : (versionFromEtag(changes.etag) ?? -1);
      const paths = request.updateMask?.paths.length
        ? expandStar(request.updateMask.paths).filter((path) => !controlFields.has(path))
        : populatedPaths(PatientSchema, changes, writableFields);
      if (paths.length === 0) throw invalidArgument("update_mask", "names no field to update");
      const violations = fieldMaskViolations(PatientSchema, paths, writableFields);
      if (violations.length > 0)
        throw new DomainError("invalid-argument", "INVALID_UPDATE_MASK", "Invalid update_mask.", { violations });
      for (let attempt = 1; ; attempt++) {
        const current = await repository.get(id);
        if (expectedVersion !== undefined && current.version !== expectedVersion) throw etagMismatch();
        const merged = patientToProto(current);
        applyFieldMask(PatientSchema, merged, changes, paths);
        const fields = completeProfile(patientDraftFromProto(merged), clock.now());
        try {
          const updated = await repository.inTransaction(async (inTx, tx) => {
            const patient = await inTx.update(id, fields, current.version);
            await context.values.get(callAuditKey)?.within(tx);
            return patient;
          });
          return { patient: patientToProto(updated) };
        } catch (error) {
          const lostRace = error instanceof DomainError && error.reason === "ETAG_MISMATCH";
          if (!lostRace || expectedVersion !== undefined || attempt >= updateAttempts) throw error;
        }
      }
    },

    async deletePatient(request, context) {
      const expectedVersion = request.etag === "" ? undefined : (versionFromEtag(request.etag) ?? -1);
      const id = patientIdFromName(request.name);
      const accountId = await repository.inTransaction(async (inTx, tx) => {
        await inTx.delete(id, expectedVersion);
        const disabled = await deletion?.disableAccountWithin(tx, id);
        await context.values.get(callAuditKey)?.within(tx);
        return disabled;
      });
      // A deleted profile logs out everywhere: its tokens must not outlive it.
      if (accountId !== undefined) await deletion?.endSessions(accountId);
      return {};
    },

    async listPatients(request) {
      const scope = "patients";
      const after = decodePageToken(scope, request.pageToken);
      const page = await repository.list({ pageSize: request.pageSize || defaultPageSize, after });
      return {
        patients: page.patients.map(patientToProto),
        nextPageToken: page.nextCursor ? encodePageToken(scope, page.nextCursor) : "",
      };
    },
  };
}

function expandStar(paths: readonly string[]): string[] {
  return paths.includes("*") ? [...writableFields] : [...paths];
}

function etagMismatch(): DomainError {
  return new DomainError("aborted", "ETAG_MISMATCH", "The profile changed since it was read: read it again and retry.");
}
