import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { AccountEmails } from "../auth/account-email.ts";
import type { DataStep } from "../db/migrate.ts";
import { dataStepBatchSize, inBatches, updateRowsById } from "../db/data-step-batches.ts";
import type { Orm } from "../db/orm.ts";
import type { Logger } from "../observability/logger.ts";
import type { FieldCrypto } from "../shared/crypto/field-crypto.ts";
import type { EmergencyContact, Insurance, PostalAddress } from "./patient.ts";
import { PatientSealer } from "./patient-contact.ts";

/** A `patients` row that still holds its contact fields in clear. */
interface PlainPatient {
  readonly id: string;
  readonly email: string;
  readonly phone: string;
  readonly upi_id: string;
  readonly address: PostalAddress | null;
  readonly insurance: Insurance | null;
  readonly emergency_contacts: EmergencyContact[];
}

/**
 * The data step of the contact encryption (issue #6): before
 * Migration20261129130100_drop_plaintext_contacts drops the plaintext columns,
 * every row still in clear is sealed with the configured keys, in batches of one
 * transaction each (so a killed run keeps what it did and the next start continues):
 *
 * - `patients`: a data key per profile, its contact, emergency and payment fields sealed
 *   into `contact_sealed`, the email's blind index into `email_index`;
 * - `accounts`: the same for the login email;
 * - `family_links`: invitations by email not yet answered matched their invitee by
 *   SHA-256 of the address; those of a registered patient's address get the address's
 *   blind index instead. An invitation to an address no profile has cannot be converted
 *   (SHA-256 cannot be reversed) and stays unmatched until it lapses.
 *
 * It runs under the migration lock, once per database; on a new database it finds nothing.
 */
export function contactEncryptionStep(crypto: FieldCrypto, logger?: Logger): DataStep {
  return {
    before: "Migration20261129130100_drop_plaintext_contacts",
    run: async (orm) => {
      const patients = await sealPatients(orm, new PatientSealer(crypto));
      const accounts = await sealAccounts(orm, new AccountEmails(crypto));
      if (patients + accounts > 0) {
        logger?.info({ patients, accounts }, "plaintext contact fields sealed (issue #6 migration)");
      }
    },
  };
}

function sealPatients(orm: Orm, sealer: PatientSealer): Promise<number> {
  return inBatches(orm, async (em: EntityManager) => {
    const rows = await em.execute<PlainPatient[]>(
      `select "id", "email", "phone", "upi_id", "address", "insurance", "emergency_contacts" from "patients" ` +
        `where "contact_sealed" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealed = rows.map((row) => {
      const columns = sealer.sealNew(row.id, {
        email: row.email,
        phone: row.phone,
        address: row.address ?? undefined,
        emergencyContacts: row.emergency_contacts,
        upiId: row.upi_id,
        insurance: row.insurance ?? undefined,
      });
      return {
        id: row.id,
        contact_sealed: columns.contactSealed,
        email_index: columns.emailIndex,
        data_key_wrapped: columns.dataKeyWrapped,
        data_key_id: columns.dataKeyId,
        old_email_hash: createHash("sha256").update(row.email.toLowerCase(), "utf8").digest("hex"),
      };
    });
    await updateRowsById(
      em,
      "patients",
      { contact_sealed: "text", email_index: "text", data_key_wrapped: "text", data_key_id: "text" },
      sealed,
    );
    await em.execute(
      `update "family_links" fl set "invitee_email_hash" = r."email_index" ` +
        `from jsonb_to_recordset(cast(? as jsonb)) as r("email_index" text, "old_email_hash" text) ` +
        `where fl."dependent_id" is null and fl."invitee_email_hash" = r."old_email_hash"`,
      [JSON.stringify(sealed)],
      "run",
    );
    return rows.length;
  });
}

function sealAccounts(orm: Orm, emails: AccountEmails): Promise<number> {
  return inBatches(orm, async (em: EntityManager) => {
    const rows = await em.execute<{ id: string; email: string }[]>(
      `select "id", "email" from "accounts" where "email_sealed" is null order by "id" limit ? for update`,
      [dataStepBatchSize],
      "all",
    );
    if (rows.length === 0) return 0;
    const sealed = rows.map((row) => {
      const email = emails.seal(row.id, row.email);
      return {
        id: row.id,
        email_index: email.emailIndex,
        email_sealed: email.emailSealed,
        data_key_wrapped: email.dataKeyWrapped,
        data_key_id: email.dataKeyId,
      };
    });
    await updateRowsById(
      em,
      "accounts",
      { email_index: "text", email_sealed: "text", data_key_wrapped: "text", data_key_id: "text" },
      sealed,
    );
    return rows.length;
  });
}

/**
 * Refuses to start with a blind index key that is not the one the stored emails were
 * indexed with (a changed or mistyped BLIND_INDEX_KEY_FILE): nobody could log in, and
 * worse, the unique indexes would no longer catch a second profile or account for an
 * address. Checks the newest few profiles that open; rows that do not open (a missing
 * KEK, a tampered row) are left to the reads that answer DATA_LOSS.
 */
export async function checkBlindIndexKey(orm: Orm, crypto: FieldCrypto): Promise<void> {
  const sealer = new PatientSealer(crypto);
  const rows = await orm.em
    .fork()
    .execute<{ id: string; contact_sealed: string; data_key_wrapped: string; email_index: string }[]>(
      `select "id", "contact_sealed", "data_key_wrapped", "email_index" from "patients" order by "id" desc limit 5`,
      [],
      "all",
    );
  for (const row of rows) {
    let email: string;
    try {
      email = sealer.open(row).email;
    } catch {
      continue;
    }
    if (sealer.emailIndex(email) === row.email_index) return;
    throw new Error(
      "BLIND_INDEX_KEY_FILE is not the key the stored emails were indexed with: configure the original key (it cannot be changed)",
    );
  }
}
