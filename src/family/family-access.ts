import type { EntityManager } from "@mikro-orm/postgresql";
import DataLoader from "dataloader";
import type { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import type { Orm } from "../db/orm.ts";
import type { Clock } from "../shared/clock.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { FamilyGrantName } from "./family-link.ts";
import { grantToProto } from "./family-mapping.ts";

const none: ReadonlySet<FamilyGrant> = new Set();

/**
 * The proxy-access check the call pipeline asks before a guardian acts for a
 * dependent (src/auth/access-control.ts `GuardianGrants`): the grants of the pair's
 * ACTIVE link that has not reached its end time, read from the database on every call,
 * so a revoke or a coming of age takes effect on the next call whatever the caller's
 * token says. A link whose guardian or dependent profile was deleted grants nothing.
 *
 * Lookups issued in the same event-loop turn share one query (DataLoader, no cache),
 * like PatientRepository.get: under load, proxy calls cost one round trip per batch.
 */
export class FamilyAccess {
  readonly #em: () => EntityManager;
  readonly #clock: Clock;

  constructor(source: Orm | (() => EntityManager), clock: Clock) {
    this.#em = typeof source === "function" ? source : () => source.em.fork();
    this.#clock = clock;
  }

  /** What `guardianPatientId` may do for `dependentPatientId` now; empty when no link is in force. */
  async grantsFor(guardianPatientId: string, dependentPatientId: string): Promise<ReadonlySet<FamilyGrant>> {
    if (!isUuid(guardianPatientId) || !isUuid(dependentPatientId) || guardianPatientId === dependentPatientId) {
      return none;
    }
    return this.#byPair.load(`${guardianPatientId.toLowerCase()}|${dependentPatientId.toLowerCase()}`);
  }

  readonly #byPair = new DataLoader<string, ReadonlySet<FamilyGrant>>((keys) => this.#grantsMany(keys), {
    cache: false,
    maxBatchSize: 16,
    batchScheduleFn: (run) => setImmediate(run),
  });

  async #grantsMany(keys: readonly string[]): Promise<ReadonlySet<FamilyGrant>[]> {
    const pairs = keys.map((key) => key.split("|") as [string, string]);
    const params: string[] = pairs.flat();
    params.push(this.#clock.now().toISOString());
    const rows = await this.#em().execute<{ guardian_id: string; dependent_id: string; grants: FamilyGrantName[] }[]>(
      `select fl."guardian_id", fl."dependent_id", fl."grants" from "family_links" fl ` +
        `join "patients" g on g."id" = fl."guardian_id" and g."deleted_at" is null ` +
        `join "patients" d on d."id" = fl."dependent_id" and d."deleted_at" is null ` +
        `where (fl."guardian_id", fl."dependent_id") in (${pairs.map(() => "(?, ?)").join(", ")}) ` +
        `and fl."state" = 'active' and (fl."end_time" is null or fl."end_time" > ?)`,
      params,
      "all",
    );
    const byPair = new Map<string, ReadonlySet<FamilyGrant>>();
    for (const row of rows) {
      const grants = new Set(row.grants.map((name) => grantToProto[name]).filter((grant) => grant !== undefined));
      byPair.set(`${row.guardian_id}|${row.dependent_id}`, grants);
    }
    return keys.map((key) => byPair.get(key) ?? none);
  }
}
