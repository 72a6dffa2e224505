import { nativePoolOf } from "../db/native-pool.ts";
import type { Record as RecordProto } from "../../gen/telemed/patient/v1/record_pb.js";
import { RecordService } from "../../gen/telemed/patient/v1/record_service_pb.js";
import { ConsultationRepository } from "../consultations/consultation-repository.ts";
import { ConsultationSummaries } from "../consultations/consultation-summaries.ts";
import { DoctorAccounts } from "../consultations/doctor-accounts.ts";
import { DeviceRepository } from "../records/device-repository.ts";
import { Devices } from "../records/devices.ts";
import { OfflineBundles } from "../records/offline-bundle.ts";
import { RecordSealer } from "../records/record-content.ts";
import { RecordCreateWriter } from "../records/record-create-writer.ts";
import { RecordFeed } from "../records/record-feed.ts";
import { recordService } from "../records/record-handlers.ts";
import { RecordReads, type SummarySource } from "../records/record-reads.ts";
import { RecordRepository } from "../records/record-repository.ts";
import { RecordSync } from "../records/record-sync.ts";
import { RecordWrites } from "../records/record-writes.ts";
import { XrayDownloads } from "../records/xray-downloads.ts";
import { XrayGateway } from "../records/xray-gateway.ts";
import type { AppContext, StartedPart } from "./app-context.ts";

/** The records context, started. */
export type RecordsPart = StartedPart;

/**
 * Starts medical records (issue #6): the history timeline, record writes, X-ray
 * downloads, the envelope encryption of their content, and offline access (the signed
 * offline bundle, devices, the change feed and offline uploads). The envelope cipher
 * is the app's (`context.crypto`: the key ring of DATA_ENCRYPTION_KEYS_FILE, shared with
 * patients and accounts). Consultation summaries stay with the
 * consultations context; the history reads them through its public classes.
 */
export async function startRecords(context: AppContext): Promise<RecordsPart> {
  const { config, logger, orm, clock, siblings } = context;
  const settings = config.records;
  const em = () => orm.em.fork();
  const log = logger.child({ component: "records" });
  const sealer = new RecordSealer(context.crypto, log);
  const repository = new RecordRepository();
  const xray = new XrayGateway(siblings.clients.xray, settings.xrayDownloadTimeoutSeconds * 1000);
  const doctors = new DoctorAccounts(em, () => clock.now().getTime());
  const summaries = summarySource(context);
  const feed = new RecordFeed();
  const creates = new RecordCreateWriter(em, repository, context.security.audit);
  const writes = new RecordWrites({ em, repository, sealer, xray, clock, creates });
  const devices = new Devices(em, new DeviceRepository(), repository, context.crypto.cipher, clock);
  const impl = recordService({
    reads: new RecordReads(em, repository, sealer, summaries, nativePoolOf(orm)),
    writes,
    downloads: new XrayDownloads(em, repository, sealer, xray),
    bundles: new OfflineBundles({
      em,
      repository,
      sealer,
      feed,
      devices,
      summaries,
      patients: context.patients,
      // The access-token key: its kid is in the one JWKS document the service publishes.
      signer: context.security.auth.issuer,
      clock,
      ttlSeconds: settings.offlineBundleTtlSeconds,
    }),
    devices,
    sync: new RecordSync({ em, repository, feed, sealer, writes, summaries, clock, logger: log }),
    doctorIdOf: (accountId) => doctors.doctorIdOf(accountId),
  });
  return {
    registrations: [{ service: RecordService, impl }],
    async close() {},
  };
}

/** Consultation summaries as history records, through the consultations context's own classes. */
function summarySource(context: AppContext): SummarySource {
  const summaries = new ConsultationSummaries(context.crypto);
  const consultations = new ConsultationRepository(() => context.orm.em.fork());
  const recordsOf: SummarySource["recordsOf"] = async (em, consultationIds) => {
    // One after the other: `em` may be a caller's transaction, whose one connection takes a statement at a time.
    const stored = await summaries.findMany(em, consultationIds);
    const found = await consultations.getMany([...stored.keys()], em);
    const records = new Map<string, RecordProto>();
    for (const [id, summary] of stored) {
      const consultation = found.get(id);
      if (consultation !== undefined) records.set(id, summaries.toRecord(summary, consultation));
    }
    return records;
  };
  return {
    recordsOf,
    recordOf: async (em, consultationId) => (await recordsOf(em, [consultationId])).get(consultationId),
  };
}
