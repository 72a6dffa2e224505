import type { EntityManager } from "@mikro-orm/postgresql";
import type { SecretBox } from "../auth/auth-deps.ts";
import { inBatches } from "../consultations/consultation-encryption-step.ts";
import type { DataStep } from "../db/migrate.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import { explanationColumn, insightTable, legacyInsightContext } from "./insight-derivation.ts";

const batchSize = 500;

/**
 * The insights' data step of Migration20261129160000_seal_free_text: explanations
 * sealed with the secret key are re-sealed under a data key of each row's own
 * (envelope encryption, so key rotation covers them), in batches of one transaction
 * each, before the next migration makes the data key required.
 */
export function insightEncryptionStep(box: () => Promise<SecretBox>, crypto: FieldCrypto, logger?: Logger): DataStep {
  return {
    before: "Migration20261129160100_drop_plaintext_free_text",
    run: async (orm) => {
      const done = await inBatches(orm, async (em: EntityManager) => {
        const rows = await em.execute<Array<{ id: string; explanation_sealed: string }>>(
          `select "id", "explanation_sealed" from "health_insights" where "data_key_wrapped" is null ` +
            `order by "id" limit ? for update`,
          [batchSize],
          "all",
        );
        if (rows.length === 0) return 0;
        const legacy = await box();
        const sealed = rows.map((row) => {
          const key = crypto.cipher.newDataKey({ table: insightTable, row: row.id });
          const explanation = legacy.open(row.explanation_sealed, legacyInsightContext(row.id));
          return {
            id: row.id,
            sealed: key.sealText(explanationColumn, explanation),
            wrapped: key.wrapped,
            key_id: key.keyId,
          };
        });
        await em.execute(
          `update "health_insights" h set "explanation_sealed" = r."sealed", "data_key_wrapped" = r."wrapped", ` +
            `"data_key_id" = r."key_id" from jsonb_to_recordset(cast(? as jsonb)) as r("id" uuid, "sealed" text, ` +
            `"wrapped" text, "key_id" text) where h."id" = r."id"`,
          [JSON.stringify(sealed)],
          "run",
        );
        return rows.length;
      });
      if (done > 0) logger?.info({ insights: done }, "insight explanations moved to envelope encryption (issue #6)");
    },
  };
}
