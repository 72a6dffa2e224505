import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ConsultationSummarySchema } from "../../gen/telemed/patient/v1/record_pb.js";
import type { SecretBox } from "../auth/auth-deps.ts";
import { dataStepBatchSize, inBatches, updateRowsById } from "../db/data-step-batches.ts";
import type { DataStep } from "../db/migrate.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import { sealText } from "./consultation-deps.ts";
import { legacySummaryContext, summaryColumn, summaryTable } from "./consultation-summaries.ts";

const before = "Migration20261129160100_drop_plaintext_free_text";

/**
 * The consultations' data steps of Migration20261129160000_seal_free_text, run under
 * the migration lock before the next migration checks and drops: cancel reasons still
 * in clear are sealed like the reason (the secret key, bound to the consultation), and
 * summaries sealed with the secret key are re-sealed under a data key of their own
 * (envelope encryption, so key rotation covers them). Batches of one transaction each;
 * on a new database they find nothing and read no key.
 */
export function consultationEncryptionSteps(
  box: () => Promise<SecretBox>,
  crypto: FieldCrypto,
  logger?: Logger,
): DataStep[] {
  return [
    {
      before,
      run: async (orm) => {
        const done = await inBatches(orm, sealCancelReasons(box));
        if (done > 0) logger?.info({ consultations: done }, "plaintext cancel reasons sealed (issue #6 migration)");
      },
    },
    {
      before,
      run: async (orm) => {
        const done = await inBatches(orm, resealSummaries(box, crypto));
        if (done > 0)
          logger?.info({ summaries: done }, "consultation summaries moved to envelope encryption (issue #6)");
      },
    },
  ];
}

function sealCancelReasons(box: () => Promise<SecretBox>) {
  return async (em: EntityManager): Promise<number> => {
    const rows = await em.execute<Array<{ id: string; cancel_reason: string }>>(
      `select "id", "cancel_reason" from "consultations" where "cancel_reason" is not null ` +
        `and "cancel_reason_sealed" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealer = await box();
    const sealed = rows.map((row) => ({
      id: row.id,
      cancel_reason_sealed: sealText(sealer, row.cancel_reason, row.id) ?? null,
    }));
    await updateRowsById(em, "consultations", { cancel_reason_sealed: "text" }, sealed);
    // An empty reason seals to nothing: clear it, so the drop's check finds no plaintext left.
    await em.execute(
      `update "consultations" set "cancel_reason" = null where "id" in (?) and "cancel_reason_sealed" is null`,
      [rows.map((row) => row.id)],
      "run",
    );
    return rows.length;
  };
}

function resealSummaries(box: () => Promise<SecretBox>, crypto: FieldCrypto) {
  return async (em: EntityManager): Promise<number> => {
    const rows = await em.execute<Array<{ id: string; consultation_id: string; summary_sealed: string }>>(
      `select "id", "consultation_id", "summary_sealed" from "consultation_summaries" ` +
        `where "data_key_wrapped" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const legacy = await box();
    const sealed = rows.map((row) => {
      const binary = Buffer.from(legacy.open(row.summary_sealed, legacySummaryContext(row.consultation_id)), "base64");
      const summary = toBinary(ConsultationSummarySchema, fromBinary(ConsultationSummarySchema, binary));
      const key = crypto.cipher.newDataKey({ table: summaryTable, row: row.id });
      return {
        id: row.id,
        summary_sealed: key.seal(summaryColumn, summary),
        data_key_wrapped: key.wrapped,
        data_key_id: key.keyId,
      };
    });
    await updateRowsById(
      em,
      summaryTable,
      { summary_sealed: "text", data_key_wrapped: "text", data_key_id: "text" },
      sealed,
    );
    return rows.length;
  };
}
