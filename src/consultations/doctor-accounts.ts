import type { EntityManager } from "@mikro-orm/postgresql";
import { invalidArgument } from "../shared/domain-errors.ts";

const doctorIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
/** A link seldom changes (an operator creates it once); a short memory spares a query per doctor call. */
const cacheMs = 60_000;

/**
 * Which Doctor Service doctor a doctor's login is (`doctor_accounts`). A doctor's token
 * names their account (`doctors/{account id}` as principal); the consultations they may
 * act on are those whose `doctor_id` is the one linked here. The link is written by the
 * operator with `npm run account:create -- --role doctor --doctor-id <id>`.
 */
export class DoctorAccounts {
  readonly #em: () => EntityManager;
  readonly #now: () => number;
  readonly #cache = new Map<string, { doctorId: string; until: number }>();

  constructor(em: () => EntityManager, now: () => number = Date.now) {
    this.#em = em;
    this.#now = now;
  }

  /** Links a doctor account to its Doctor Service id; INVALID_ARGUMENT for a malformed id. */
  async link(accountId: string, doctorId: string, now: Date): Promise<void> {
    await linkDoctorAccount(this.#em(), accountId, doctorId, now);
    this.#cache.delete(accountId);
  }

  /** The Doctor Service id of a doctor account, or undefined when it has none. */
  async doctorIdOf(accountId: string): Promise<string | undefined> {
    const cached = this.#cache.get(accountId);
    if (cached !== undefined && cached.until > this.#now()) return cached.doctorId;
    const row = await this.#em().execute<{ doctor_id: string }>(
      `select "doctor_id" from "doctor_accounts" where "account_id" = ?`,
      [accountId],
      "get",
    );
    if (row === undefined) return undefined;
    this.#cache.set(accountId, { doctorId: row.doctor_id, until: this.#now() + cacheMs });
    return row.doctor_id;
  }
}

/** Stores the link (replacing an earlier one of the account); for the operator script too. */
export async function linkDoctorAccount(
  em: EntityManager,
  accountId: string,
  doctorId: string,
  now: Date,
): Promise<void> {
  if (!doctorIdPattern.test(doctorId)) throw invalidArgument("doctor_id", "must be a Doctor Service doctor id");
  await em.execute(
    `insert into "doctor_accounts" ("account_id", "doctor_id", "created_at") values (?, ?, ?) ` +
      `on conflict ("account_id") do update set "doctor_id" = excluded."doctor_id"`,
    [accountId, doctorId, now.toISOString()],
    "run",
  );
}
