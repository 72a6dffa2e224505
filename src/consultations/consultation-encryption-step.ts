import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ConsultationSummarySchema } from "../../gen/telemed/patient/v1/record_pb.js";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { DataStep } from "../db/migrate.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import { sealText } from "./consultation-deps.ts";
import { legacySummaryContext, summaryColumn, summaryTable } from "./consultation-summaries.ts";

const batchSize = 500;
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

/** Runs `batch` (one transaction each) until it finds nothing; how many rows it did. */
export async function inBatches(orm: Orm, batch: (em: EntityManager) => Promise<number>): Promise<number> {
  let done = 0;
  for (;;) {
    const count = await orm.em.fork().transactional(batch);
    if (count === 0) return done;
    done += count;
  }
}

function sealCancelReasons(box: () => Promise<SecretBox>) {
  return async (em: EntityManager): Promise<number> => {
    const rows = await em.execute<Array<{ id: string; cancel_reason: string }>>(
      `select "id", "cancel_reason" from "consultations" where "cancel_reason" is not null ` +
        `and "cancel_reason_sealed" is null order by "id" limit ? for update`,
      [batchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealer = await box();
    const sealed = rows.map((row) => ({ id: row.id, sealed: sealText(sealer, row.cancel_reason, row.id) ?? null }));
    await em.execute(
      `update "consultations" c set "cancel_reason_sealed" = r."sealed" ` +
        `from jsonb_to_recordset(cast(? as jsonb)) as r("id" uuid, "sealed" text) where c."id" = r."id"`,
      [JSON.stringify(sealed)],
      "run",
    );
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
      [batchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const legacy = await box();
    const sealed = rows.map((row) => {
      const binary = Buffer.from(legacy.open(row.summary_sealed, legacySummaryContext(row.consultation_id)), "base64");
      const summary = toBinary(ConsultationSummarySchema, fromBinary(ConsultationSummarySchema, binary));
      const key = crypto.cipher.newDataKey({ table: summaryTable, row: row.id });
      return { id: row.id, sealed: key.seal(summaryColumn, summary), wrapped: key.wrapped, key_id: key.keyId };
    });
    await em.execute(
      `update "consultation_summaries" s set "summary_sealed" = r."sealed", "data_key_wrapped" = r."wrapped", ` +
        `"data_key_id" = r."key_id" from jsonb_to_recordset(cast(? as jsonb)) as r("id" uuid, "sealed" text, ` +
        `"wrapped" text, "key_id" text) where s."id" = r."id"`,
      [JSON.stringify(sealed)],
      "run",
    );
    return rows.length;
  };
}
