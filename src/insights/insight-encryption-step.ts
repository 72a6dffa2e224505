import type { EntityManager } from "@mikro-orm/postgresql";
import type { SecretBox } from "../auth/auth-deps.ts";
import { dataStepBatchSize, inBatches, updateRowsById } from "../db/data-step-batches.ts";
import type { DataStep } from "../db/migrate.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import { explanationColumn, insightTable, legacyInsightContext } from "./insight-derivation.ts";

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
          [dataStepBatchSize],
          "all",
        );
        if (rows.length === 0) return 0;
        const legacy = await box();
        const sealed = rows.map((row) => {
          const key = crypto.cipher.newDataKey({ table: insightTable, row: row.id });
          const explanation = legacy.open(row.explanation_sealed, legacyInsightContext(row.id));
          return {
            id: row.id,
            explanation_sealed: key.sealText(explanationColumn, explanation),
            data_key_wrapped: key.wrapped,
            data_key_id: key.keyId,
          };
        });
        await updateRowsById(
          em,
          "health_insights",
          { explanation_sealed: "text", data_key_wrapped: "text", data_key_id: "text" },
          sealed,
        );
        return rows.length;
      });
      if (done > 0) logger?.info({ insights: done }, "insight explanations moved to envelope encryption (issue #6)");
    },
  };
}
