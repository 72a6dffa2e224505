import { type EntityManager, UniqueConstraintViolationException } from "@mikro-orm/postgresql";
import type { Orm } from "../db/orm.ts";
import { invalidArgument } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import type { ConsentMethod, FamilyGrantName, FamilyLink, LinkActor, LinkState, Relationship } from "./family-link.ts";
import {
  dateText,
  displayName,
  type FamilyLinkRecord,
  linkFrom,
  linkFromRecord,
  linkSelect,
} from "./family-link-entity.ts";
import { linkAlreadyExists } from "./family-rules.ts";

/** A link with how the caller stands to it: whether their email is the invitation's. */
export interface FoundLink {
  readonly link: FamilyLink;
  readonly callerIsInvitee: boolean;
}

/** A new link to store. */
export interface NewLink {
  readonly id: string;
  readonly guardianId: string;
  readonly dependentId: string | undefined;
  readonly inviteeEmailHash: string | undefined;
  readonly relationship: Relationship;
  readonly grants: readonly FamilyGrantName[];
  readonly state: LinkState;
  readonly consent: { method: ConsentMethod; actor: LinkActor; time: Date } | undefined;
  readonly endTime: Date | undefined;
  readonly createRequestId: string | undefined;
  readonly now: Date;
}

/** Columns an update may set; only the keys present are written. */
export interface LinkUpdate {
  readonly dependentId?: string;
  readonly relationship?: Relationship;
  readonly grants?: readonly FamilyGrantName[];
  readonly state?: LinkState;
  readonly consent?: { method: ConsentMethod; actor: LinkActor; time: Date };
  readonly revocation?: { actor: LinkActor; reason: string; time: Date };
  readonly endTime?: Date | undefined;
}

/** Which links `list` returns. */
export interface LinkQuery {
  readonly patientId: string;
  readonly side: "guardian" | "dependent";
  /** Effective states (as read at `now`); all when empty. */
  readonly states: readonly LinkState[];
  readonly now: Date;
  /** Invitations created at or before this read as EXPIRED. */
  readonly lapsedBefore: Date;
  readonly pageSize: number;
  /** The id of the last link of the previous page. */
  readonly afterId: string | undefined;
}

/** What the service reads about a patient for family rules. */
export interface PatientFacts {
  readonly id: string;
  /** The blind index of the profile's email (invitations by email are matched by it). */
  readonly emailIndex: string;
  readonly birthDate: string;
  readonly displayName: string;
}

/** A value `em.execute` inlines; an array becomes a comma-separated list, for `in (?)`. */
type SqlValue = string | number | null | readonly string[];

/** The columns of `patients` the family rules read. */
interface PatientRow {
  readonly id: string;
  readonly email_index: string;
  readonly birth_date: string;
  readonly given_name: string;
  readonly family_name: string;
}

/**
 * The email blind index of the patient given as the parameter (what `invitee_email_hash`
 * holds for an invitation by email); null when there is none.
 */
const callerEmailHash = `(select c."email_index" from "patients" c where c."id" = ? and c."deleted_at" is null)`;
/** The state a link reads as at a time (parameters: now, now, lapsedBefore); family-rules.ts `effectiveState`. */
const effectiveStateSql =
  `(case when fl."state" = 'active' and fl."end_time" <= ? then 'expired' ` +
  `when fl."state" = 'pending_consent' and (fl."end_time" <= ? or fl."created_at" <= ?) then 'expired' ` +
  `else fl."state" end)`;

/**
 * Stores family links in `family_links`, with hand-written SQL like PatientRepository.
 * Reads fork their own EntityManager; writes take the caller's transaction (`em`),
 * so a change, its audit entry and any profile it creates commit together.
 */
export class FamilyLinkRepository {
  readonly #em: () => EntityManager;

  constructor(source: Orm | (() => EntityManager)) {
    this.#em = typeof source === "function" ? source : () => source.em.fork();
  }

  /** A fresh EntityManager fork, for a transaction (`fork().transactional(...)`). */
  fork(): EntityManager {
    return this.#em();
  }

  /** The link a create with this request id made, if any (AIP-155). */
  async findByRequestId(requestId: string, em: EntityManager = this.#em()): Promise<FamilyLink | undefined> {
    const record: FamilyLinkRecord | undefined = await em.execute<FamilyLinkRecord>(
      `${linkSelect} ${linkFrom} where fl."create_request_id" = ?`,
      [requestId],
      "get",
    );
    return record === undefined ? undefined : linkFromRecord(record);
  }

  /**
   * The link `patients/{guardianId}/familyLinks/{linkId}`, and whether `callerPatientId`'s
   * email is its invitation's. With `lock`, the row is locked until `em`'s transaction ends.
   */
  async find(
    guardianId: string,
    linkId: string,
    callerPatientId: string | undefined,
    options: { em?: EntityManager; lock?: boolean } = {},
  ): Promise<FoundLink | undefined> {
    if (!isUuid(guardianId) || !isUuid(linkId)) return undefined;
    const caller = callerPatientId !== undefined && isUuid(callerPatientId) ? callerPatientId : null;
    const record: FamilyLinkRecord | undefined = await (options.em ?? this.#em()).execute<FamilyLinkRecord>(
      `${linkSelect}, (fl."dependent_id" is null and fl."invitee_email_hash" = ${callerEmailHash}) as "caller_is_invitee" ` +
        `${linkFrom} where fl."id" = ? and fl."guardian_id" = ?${options.lock ? ` for update of fl` : ""}`,
      [caller, linkId, guardianId],
      "get",
    );
    if (record === undefined) return undefined;
    return { link: linkFromRecord(record), callerIsInvitee: record.caller_is_invitee === true };
  }

  /** A page of links, newest first (ids are UUIDv7), keyset on the id. */
  async list(query: LinkQuery): Promise<{ links: FamilyLink[]; lastId: string | undefined }> {
    if (!isUuid(query.patientId)) return { links: [], lastId: undefined };
    const params: SqlValue[] = [];
    let where: string;
    if (query.side === "guardian") {
      where = `fl."guardian_id" = ?`;
      params.push(query.patientId);
    } else {
      where = `(fl."dependent_id" = ? or (fl."dependent_id" is null and fl."invitee_email_hash" = ${callerEmailHash}))`;
      params.push(query.patientId, query.patientId);
    }
    if (query.states.length > 0) {
      where += ` and ${effectiveStateSql} in (?)`;
      const now = query.now.toISOString();
      params.push(now, now, query.lapsedBefore.toISOString());
      params.push(query.states);
    }
    if (query.afterId !== undefined) {
      if (!isUuid(query.afterId)) throw invalidArgument("page_token", "not a page token of this list");
      where += ` and fl."id" < ?`;
      params.push(query.afterId);
    }
    params.push(query.pageSize + 1);
    const records = await this.#em().execute<FamilyLinkRecord[]>(
      `${linkSelect} ${linkFrom} where ${where} order by fl."id" desc limit ?`,
      params,
      "all",
    );
    const links = records.slice(0, query.pageSize).map(linkFromRecord);
    return { links, lastId: records.length > query.pageSize ? links.at(-1)?.id : undefined };
  }

  /**
   * Inserts a link in `em`'s transaction; false when a link with its request id exists
   * already (a retried create). A second live link for the pair is ALREADY_EXISTS.
   */
  async insert(em: EntityManager, link: NewLink): Promise<boolean> {
    const stamp = link.now.toISOString();
    const columns = new Map<string, SqlValue>([
      ["id", link.id],
      ["guardian_id", link.guardianId],
      ["dependent_id", link.dependentId ?? null],
      ["invitee_email_hash", link.inviteeEmailHash ?? null],
      ["relationship", link.relationship],
      ["grants", textArray(link.grants)],
      ["state", link.state],
      ["consent_method", link.consent?.method ?? null],
      ["consent_actor", link.consent?.actor.principal ?? null],
      ["consent_actor_role", link.consent?.actor.role ?? null],
      ["consent_time", link.consent?.time.toISOString() ?? null],
      ["end_time", link.endTime?.toISOString() ?? null],
      ["create_request_id", link.createRequestId ?? null],
      ["version", 1],
      ["created_at", stamp],
      ["updated_at", stamp],
    ]);
    const names = [...columns.keys()].map((name) => `"${name}"`);
    const result = await mapPairConflict(() =>
      em.execute<{ affectedRows: number }>(
        `insert into "family_links" (${names.join(", ")}) values (${names.map(() => "?").join(", ")}) ` +
          `on conflict ("create_request_id") do nothing`,
        [...columns.values()],
        "run",
      ),
    );
    return result.affectedRows === 1;
  }

  /**
   * Applies `changes` to the link at `version` in `em`'s transaction and bumps the
   * version; false when the row is gone or at another version.
   */
  async update(em: EntityManager, id: string, version: number, changes: LinkUpdate, now: Date): Promise<boolean> {
    const columns = new Map<string, SqlValue>();
    if (changes.dependentId !== undefined) columns.set("dependent_id", changes.dependentId);
    if (changes.relationship !== undefined) columns.set("relationship", changes.relationship);
    if (changes.grants !== undefined) columns.set("grants", textArray(changes.grants));
    if (changes.state !== undefined) columns.set("state", changes.state);
    if (changes.consent !== undefined) {
      columns.set("consent_method", changes.consent.method);
      columns.set("consent_actor", changes.consent.actor.principal);
      columns.set("consent_actor_role", changes.consent.actor.role);
      columns.set("consent_time", changes.consent.time.toISOString());
    }
    if (changes.revocation !== undefined) {
      columns.set("revoked_by", changes.revocation.actor.principal);
      columns.set("revoked_by_role", changes.revocation.actor.role);
      columns.set("revoke_reason", changes.revocation.reason);
      columns.set("revoked_at", changes.revocation.time.toISOString());
    }
    if ("endTime" in changes) columns.set("end_time", changes.endTime?.toISOString() ?? null);
    const assignments = [...columns.keys()].map((name) => `"${name}" = ?`);
    const result = await mapPairConflict(() =>
      em.execute<{ affectedRows: number }>(
        `update "family_links" set ${[...assignments, `"version" = "version" + 1`, `"updated_at" = ?`].join(", ")} ` +
          `where "id" = ? and "version" = ?`,
        [...columns.values(), now.toISOString(), id, version],
        "run",
      ),
    );
    return result.affectedRows === 1;
  }

  /**
   * Stores EXPIRED on the pair's live link when it only reads as expired (a minor come
   * of age, a lapsed invitation), so the pair is free for a new link. The row keeps
   * its consent and end time; the change is the one the reader already saw.
   * Returns the ids of the links it changed.
   */
  async expireStale(
    em: EntityManager,
    guardianId: string,
    dependentId: string,
    now: Date,
    lapsedBefore: Date,
  ): Promise<string[]> {
    const stamp = now.toISOString();
    const rows = await em.execute<{ id: string }[]>(
      `update "family_links" fl set "state" = 'expired', "version" = "version" + 1, "updated_at" = ? ` +
        `where fl."guardian_id" = ? and fl."dependent_id" = ? and fl."state" in ('pending_consent', 'active') ` +
        `and ${effectiveStateSql} = 'expired' returning fl."id"`,
      [stamp, guardianId, dependentId, stamp, stamp, lapsedBefore.toISOString()],
      "all",
    );
    return rows.map((row) => row.id);
  }

  /** What family rules need of a live patient profile; undefined when there is none. */
  async patientFacts(id: string, em: EntityManager = this.#em()): Promise<PatientFacts | undefined> {
    if (!isUuid(id)) return undefined;
    const record: PatientRow | undefined = await em.execute<PatientRow>(
      `select "id", "email_index", "birth_date", "given_name", "family_name" from "patients" where "id" = ? and "deleted_at" is null`,
      [id],
      "get",
    );
    if (record === undefined) return undefined;
    return {
      id: record.id,
      emailIndex: record.email_index,
      birthDate: dateText(record.birth_date),
      displayName: displayName(record.given_name, record.family_name),
    };
  }
}

/**
 * A PostgreSQL array literal, `{view_records,pay_bills}`. The values are the fixed
 * lower-case names of family-link.ts (no quotes, commas or braces), and the column's
 * check constraint refuses anything else.
 */
function textArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}

/** Runs a write, turning a second live link for the same pair into ALREADY_EXISTS. */
async function mapPairConflict<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (
      error instanceof UniqueConstraintViolationException &&
      (error as { constraint?: string }).constraint === "family_links_pair_live_unique"
    ) {
      throw linkAlreadyExists();
    }
    throw error;
  }
}
