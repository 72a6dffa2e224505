import type { EntityManager } from "@mikro-orm/postgresql";
import { etagMismatch } from "../shared/domain-errors.ts";
import { type CategoryName, categoryNames, type ChannelName, channelNames } from "./notification.ts";
import { defaultPreferences, type NotificationPreferences } from "./notification-preferences.ts";

interface PreferenceRow {
  readonly patient_id: string;
  readonly categories: { category: string; channels: string[] }[];
  readonly quiet_start_minute: number | null;
  readonly quiet_end_minute: number | null;
  readonly time_zone: string | null;
  readonly reminder_offsets_seconds: number[] | null;
  readonly version: number;
  readonly updated_at: string | Date;
}

const columns =
  `"patient_id", "categories", "quiet_start_minute", "quiet_end_minute", "time_zone", ` +
  `"reminder_offsets_seconds", "version", "updated_at"`;

/** The fields an update replaces (each whole), as the handler resolved them from the mask. */
export type PreferenceChanges = Partial<
  Pick<NotificationPreferences, "categories" | "quietHours" | "timeZone" | "reminderOffsetsSeconds">
>;

/** Notification preferences in `notification_preferences`; a patient without a row has the defaults. */
export class PreferenceStore {
  readonly #em: () => EntityManager;

  constructor(em: () => EntityManager) {
    this.#em = em;
  }

  /** A patient's preferences (defaults when never set). */
  async get(patientId: string, em: EntityManager = this.#em()): Promise<NotificationPreferences> {
    return (await this.getMany([patientId], em)).get(patientId) ?? defaultPreferences(patientId);
  }

  /** Several patients' preferences; every id asked for is in the answer. */
  async getMany(
    patientIds: readonly string[],
    em: EntityManager = this.#em(),
  ): Promise<Map<string, NotificationPreferences>> {
    const answer = new Map(patientIds.map((id) => [id, defaultPreferences(id)]));
    if (patientIds.length === 0) return answer;
    const rows = await em.execute<PreferenceRow[]>(
      `select ${columns} from "notification_preferences" where "patient_id" in (${patientIds.map(() => "?").join(", ")})`,
      [...patientIds],
      "all",
    );
    for (const row of rows) answer.set(row.patient_id, fromRow(row));
    return answer;
  }

  /**
   * Applies `changes` on top of the stored preferences in one transaction, guarded by
   * the version: `expectedVersion` (from the etag) must be the current one, else
   * ABORTED. Without an etag, the latest version is updated. `within` runs in the
   * same transaction (the audit entry of the change).
   */
  async update(
    patientId: string,
    changes: PreferenceChanges,
    expectedVersion: number | undefined,
    now: Date,
    within?: (em: EntityManager) => Promise<void>,
  ): Promise<NotificationPreferences> {
    return this.#em().transactional(async (em) => {
      // Lock the row if there is one; a first write races only with another first write (primary key).
      const current: PreferenceRow | undefined = await em.execute<PreferenceRow>(
        `select ${columns} from "notification_preferences" where "patient_id" = ? for update`,
        [patientId],
        "get",
      );
      const base = current === undefined ? defaultPreferences(patientId) : fromRow(current);
      if (expectedVersion !== undefined && expectedVersion !== base.version) {
        throw etagMismatch("NotificationPreferences");
      }
      const next: NotificationPreferences = { ...base, ...changes, version: base.version + 1, updateTime: now };
      const params = [
        patientId,
        JSON.stringify([...next.categories].map(([category, channels]) => ({ category, channels }))),
        next.quietHours?.startMinute ?? null,
        next.quietHours?.endMinute ?? null,
        next.timeZone ?? null,
        next.reminderOffsetsSeconds === undefined ? null : JSON.stringify(next.reminderOffsetsSeconds),
        next.version,
        now.toISOString(),
      ];
      const written = await em.execute<{ affectedRows: number }>(
        `insert into "notification_preferences" (${columns}) values (?, ?, ?, ?, ?, ?, ?, ?) ` +
          `on conflict ("patient_id") do update set "categories" = excluded."categories", ` +
          `"quiet_start_minute" = excluded."quiet_start_minute", "quiet_end_minute" = excluded."quiet_end_minute", ` +
          `"time_zone" = excluded."time_zone", "reminder_offsets_seconds" = excluded."reminder_offsets_seconds", ` +
          `"version" = excluded."version", "updated_at" = excluded."updated_at" ` +
          `where "notification_preferences"."version" = ?`,
        [...params, base.version],
        "run",
      );
      // Another first write got in between our read and our insert: the caller's version is stale.
      if (written.affectedRows !== 1) throw etagMismatch("NotificationPreferences");
      await within?.(em);
      return next;
    });
  }
}

function fromRow(row: PreferenceRow): NotificationPreferences {
  const categories = new Map<CategoryName, ChannelName[]>();
  for (const entry of row.categories) {
    if (!(categoryNames as readonly string[]).includes(entry.category)) continue;
    categories.set(
      entry.category as CategoryName,
      entry.channels.filter((c): c is ChannelName => (channelNames as readonly string[]).includes(c)),
    );
  }
  return {
    patientId: row.patient_id,
    categories,
    quietHours:
      row.quiet_start_minute === null || row.quiet_end_minute === null
        ? undefined
        : { startMinute: row.quiet_start_minute, endMinute: row.quiet_end_minute },
    timeZone: row.time_zone ?? undefined,
    reminderOffsetsSeconds: row.reminder_offsets_seconds ?? undefined,
    version: row.version,
    updateTime: new Date(row.updated_at),
  };
}
