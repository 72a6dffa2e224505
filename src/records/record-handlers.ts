import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Record as RecordProto } from "../../gen/telemed/patient/v1/record_pb.js";
import { GetRecordResponseSchema, type RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { actingForKey, principalKey } from "../rpc/context-keys.ts";
import { FrozenAnswers } from "../rpc/frozen-answers.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import type { Device } from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { deviceIdsOf, type Devices } from "./devices.ts";
import type { OfflineBundles } from "./offline-bundle.ts";
import type { RecordReads } from "./record-reads.ts";
import { recordIdsOf, type Writer } from "./record-rules.ts";
import type { RecordSync } from "./record-sync.ts";
import type { RecordWrites } from "./record-writes.ts";
import type { XrayDownloads } from "./xray-downloads.ts";

/** GetRecord's answers, one per record object (RecordReads shares one while its row is unchanged). */
const getRecordAnswers = new FrozenAnswers((record: RecordProto) => create(GetRecordResponseSchema, { record }));

/** The use cases behind RecordService. */
export interface RecordUseCases {
  readonly reads: RecordReads;
  readonly writes: RecordWrites;
  readonly downloads: XrayDownloads;
  readonly bundles: OfflineBundles;
  readonly devices: Devices;
  readonly sync: RecordSync;
  /** The Doctor Service id a doctor's account is linked to (consultations' DoctorAccounts). */
  doctorIdOf(accountId: string): Promise<string | undefined>;
}

/**
 * RecordService handlers: protobuf in, protobuf out. The pipeline decided who may call
 * and for which patient (the policy in the contract), validated the request and audits
 * reads; the use cases check what depends on the record.
 */
export function recordService(u: RecordUseCases): Partial<ServiceImpl<typeof RecordService>> {
  const patientOf = (context: HandlerContext): string => {
    const actingFor = context.values.get(actingForKey);
    if (actingFor === undefined) throw notFound("Patient");
    return actingFor.patientId;
  };
  const audit = (context: HandlerContext) => context.values.get(callAuditKey);
  const writerOf = async (context: HandlerContext): Promise<Writer> => {
    const principal = context.values.get(principalKey);
    const role = principal?.role;
    if (principal === undefined || role === undefined || role === "paramedic") {
      throw new DomainError("permission-denied", "ROLE_NOT_ALLOWED", "Your role may not call this method.");
    }
    const doctorId =
      role === "doctor" && principal.accountId !== undefined ? await u.doctorIdOf(principal.accountId) : undefined;
    return { role, principal: principal.name, doctorId };
  };
  const recordIdOf = (name: string, field: string): string => {
    const ids = recordIdsOf(name);
    if (ids === undefined) throw invalidArgument(field, "must be patients/{patient}/records/{record}");
    return ids.recordId;
  };
  /** A device of the patient the pipeline admitted; another patient's is NOT_FOUND like a missing one. */
  const deviceIdOf = (name: string, patientId: string): string => {
    const ids = deviceIdsOf(name);
    if (ids === undefined || ids.patientId !== patientId) throw notFound("Device");
    return ids.deviceId;
  };

  return {
    async listRecords(request, context) {
      const page = await u.reads.list(patientOf(context), request);
      return { records: page.records, nextPageToken: page.next };
    },

    async getRecord(request, context) {
      return getRecordAnswers.of(await u.reads.get(patientOf(context), recordIdOf(request.name, "name")));
    },

    async createRecord(request, context) {
      const created = await u.writes.create(
        patientOf(context),
        request.record as RecordProto,
        request.requestId,
        await writerOf(context),
        audit(context),
      );
      return { record: created };
    },

    async updateRecord(request, context) {
      const record = request.record as RecordProto;
      const updated = await u.writes.update(
        patientOf(context),
        recordIdOf(record.name, "record.name"),
        record,
        request.updateMask?.paths ?? [],
        await writerOf(context),
        audit(context),
      );
      return { record: updated };
    },

    async deleteRecord(request, context) {
      await u.writes.delete(
        patientOf(context),
        recordIdOf(request.name, "name"),
        request.etag,
        request.reason,
        await writerOf(context),
        audit(context),
      );
      return {};
    },

    async *downloadXray(request, context) {
      yield* u.downloads.download(patientOf(context), request, context.signal);
    },

    async getOfflineBundle(request, context) {
      const patientId = patientOf(context);
      const deviceId = request.device === "" ? undefined : deviceIdOf(request.device, patientId);
      return { offlineBundle: await u.bundles.get(patientId, deviceId) };
    },

    async registerDevice(request, context) {
      const principal = context.values.get(principalKey);
      const device = await u.devices.register(
        patientOf(context),
        request.device as Device,
        request.requestId,
        principal?.name ?? "",
        audit(context),
      );
      return { device };
    },

    async listDevices(request, context) {
      const page = await u.devices.list(patientOf(context), request.pageSize, request.pageToken);
      return { devices: page.devices, nextPageToken: page.next };
    },

    async deleteDevice(request, context) {
      const patientId = patientOf(context);
      await u.devices.delete(patientId, deviceIdOf(request.name, patientId), audit(context));
      return {};
    },

    async pullRecordChanges(request, context) {
      return u.sync.pull(patientOf(context), request.cursor, request.pageSize);
    },

    async pushRecordChanges(request, context) {
      return u.sync.push(patientOf(context), request.changes, await writerOf(context), audit(context));
    },
  };
}
