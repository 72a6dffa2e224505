import type { EntityManager } from "@mikro-orm/postgresql";
import type { DataStep } from "../db/migrate.ts";
import { dataStepBatchSize, inBatches, updateRowsById } from "../db/data-step-batches.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import type { StoredLocation } from "./emergency-record.ts";
import { EmergencySealer } from "./emergency-sealing.ts";

/** An `emergencies` row that still holds what the patient reported in clear. */
interface PlainEmergency {
  readonly id: string;
  readonly description: string;
  readonly location: StoredLocation | string;
  readonly callback_phone: string;
  readonly cancel_reason: string | null;
}

/**
 * The data step of Migration20261129160000_seal_free_text for emergencies: before the
 * next migration drops the plaintext columns, every row still in clear gets its data
 * key and its details and cancel reason sealed, in batches of one transaction each (a
 * killed run keeps what it did; the next start continues). Runs under the migration
 * lock; on a new database it finds nothing.
 */
export function emergencyEncryptionStep(crypto: FieldCrypto, logger?: Logger): DataStep {
  return {
    before: "Migration20261129160100_drop_plaintext_free_text",
    run: async (orm) => {
      const sealed = await sealEmergencies(orm, new EmergencySealer(crypto));
      if (sealed > 0) logger?.info({ emergencies: sealed }, "plaintext emergency details sealed (issue #6 migration)");
    },
  };
}

function sealEmergencies(orm: Orm, sealer: EmergencySealer): Promise<number> {
  return inBatches(orm, async (em: EntityManager) => {
    const rows = await em.execute<PlainEmergency[]>(
      `select "id", "description", "location", "callback_phone", "cancel_reason" from "emergencies" ` +
        `where "details_sealed" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealed = rows.map((row) => {
      const location = (typeof row.location === "string" ? JSON.parse(row.location) : row.location) as StoredLocation;
      const columns = sealer.seal(row.id, {
        description: row.description,
        location,
        callbackPhone: row.callback_phone,
      });
      return {
        id: row.id,
        details_sealed: columns.detailsSealed,
        data_key_wrapped: columns.dataKeyWrapped,
        data_key_id: columns.dataKeyId,
        cancel_reason_sealed: sealer.sealCancelReason(row.id, columns.dataKeyWrapped, row.cancel_reason ?? ""),
      };
    });
    await updateRowsById(
      em,
      "emergencies",
      { details_sealed: "text", data_key_wrapped: "text", data_key_id: "text", cancel_reason_sealed: "text" },
      sealed,
    );
    return rows.length;
  });
}
