import type { EntityManager } from "@mikro-orm/postgresql";
import { uuidV7 } from "../shared/uuid-v7.ts";
import type {
  CategoryName,
  ChannelDeliveryView,
  ChannelName,
  DeliveryState,
  PriorityName,
  StoredNotification,
} from "./notification.ts";
import type { ChannelPlan } from "./notification-preferences.ts";

/** A notification to store, in the store's vocabulary (validated by the recorder). */
export interface NewNotification {
  readonly recipientId: string;
  readonly aboutPatientId: string | undefined;
  readonly category: CategoryName;
  readonly priority: PriorityName;
  readonly title: string;
  readonly body: string;
  readonly subjectResource: string | undefined;
  readonly dedupeKey: string | undefined;
  readonly expireTime: Date | undefined;
}

/** What one insert stored (a duplicate by dedupe key stores nothing). */
export interface InsertedNotification {
  readonly id: string;
  readonly sequence: number;
  readonly input: NewNotification;
}

/** One page of a recipient's notifications, newest first. */
export interface NotificationQuery {
  readonly recipientId: string;
  readonly unreadOnly: boolean;
  readonly categories: readonly CategoryName[];
  /** Only sequences below this (the previous page's last). */
  readonly beforeSequence: number | undefined;
  readonly limit: number;
}

interface NotificationRow {
  readonly id: string;
  readonly recipient_id: string;
  readonly sequence: string | number;
  readonly about_patient_id: string | null;
  readonly category: CategoryName;
  readonly priority: PriorityName;
  readonly title: string;
  readonly body: string;
  readonly subject_resource: string | null;
  readonly expire_at: string | Date | null;
  readonly created_at: string | Date;
  readonly read_at: string | Date | null;
  readonly deliveries: { channel: ChannelName; state: DeliveryState; updated_at: string }[] | null;
}

const select =
  `select n."id", n."recipient_id", n."sequence", n."about_patient_id", n."category", n."priority", n."title", ` +
  `n."body", n."subject_resource", n."expire_at", n."created_at", n."read_at", ` +
  `(select json_agg(json_build_object('channel', d."channel", 'state', d."state", 'updated_at', d."updated_at") ` +
  `order by d."channel") from "notification_deliveries" d where d."notification_id" = n."id") as "deliveries" ` +
  `from "notifications" n`;

/**
 * The per-patient notification store, in hand-written SQL. Writes run in the caller's
 * transaction; reads take a fresh EntityManager each.
 */
export class NotificationStore {
  readonly #em: () => EntityManager;

  constructor(em: () => EntityManager) {
    this.#em = em;
  }

  /**
   * Stores one recipient's notifications inside `em`'s transaction: takes the next
   * sequences from the recipient's head row (locking it until commit, which orders
   * this recipient's commits by sequence), then inserts, dropping drafts whose
   * dedupe key the recipient already has. Returns what was stored.
   */
  async insertWithin(
    em: EntityManager,
    recipientId: string,
    items: readonly NewNotification[],
    now: Date,
  ): Promise<InsertedNotification[]> {
    return (await this.insertManyWithin(em, new Map([[recipientId, items]]), now)).get(recipientId) ?? [];
  }

  /**
   * `insertWithin` for several recipients in two statements, whatever their number: one
   * moves every head row (locked in the map's order; callers pass recipients sorted, so
   * two producers cannot deadlock), one inserts every notification.
   */
  async insertManyWithin(
    em: EntityManager,
    byRecipient: ReadonlyMap<string, readonly NewNotification[]>,
    now: Date,
  ): Promise<Map<string, InsertedNotification[]>> {
    const recipients = [...byRecipient].filter(([, items]) => items.length > 0);
    const result = new Map<string, InsertedNotification[]>();
    if (recipients.length === 0) return result;
    const stamp = now.toISOString();
    const heads = await em.execute<{ recipient_id: string; last_sequence: string | number }[]>(
      `insert into "notification_heads" ("recipient_id", "last_sequence", "updated_at") values ` +
        `${recipients.map(() => "(?, ?, ?)").join(", ")} ` +
        `on conflict ("recipient_id") do update set "last_sequence" = "notification_heads"."last_sequence" + ` +
        `excluded."last_sequence", "updated_at" = excluded."updated_at" returning "recipient_id", "last_sequence"`,
      recipients.flatMap(([recipientId, items]) => [recipientId, items.length, stamp]),
      "all",
    );
    const lastOf = new Map(heads.map((head) => [head.recipient_id, Number(head.last_sequence)]));
    const rows: (InsertedNotification & { recipientId: string })[] = [];
    for (const [recipientId, items] of recipients) {
      const last = lastOf.get(recipientId);
      if (last === undefined) throw new Error("a notification head row was not returned");
      const first = last - items.length + 1;
      items.forEach((input, index) => {
        rows.push({ id: uuidV7(now.getTime()), sequence: first + index, input, recipientId });
      });
    }
    const params: (string | number | null)[] = [];
    for (const { id, sequence, input, recipientId } of rows) {
      params.push(
        id,
        recipientId,
        sequence,
        input.aboutPatientId ?? null,
        input.category,
        input.priority,
        input.title,
        input.body,
        input.subjectResource ?? null,
        input.dedupeKey ?? null,
        input.expireTime?.toISOString() ?? null,
        stamp,
      );
    }
    const stored = await em.execute<{ id: string }[]>(
      `insert into "notifications" ("id", "recipient_id", "sequence", "about_patient_id", "category", "priority", ` +
        `"title", "body", "subject_resource", "dedupe_key", "expire_at", "created_at") values ` +
        rows.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ") +
        ` on conflict do nothing returning "id"`,
      params,
      "all",
    );
    const kept = new Set(stored.map((row) => row.id));
    for (const { id, sequence, input, recipientId } of rows) {
      if (!kept.has(id)) continue;
      const list = result.get(recipientId) ?? [];
      list.push({ id, sequence, input });
      result.set(recipientId, list);
    }
    return result;
  }

  /** Inserts the channel rows of stored notifications, as planned, inside `em`'s transaction. */
  async insertDeliveriesWithin(
    em: EntityManager,
    plans: readonly { notificationId: string; recipientId: string; plan: readonly ChannelPlan[] }[],
    now: Date,
  ): Promise<void> {
    const params: (string | number | null)[] = [];
    let count = 0;
    for (const { notificationId, recipientId, plan } of plans) {
      for (const channel of plan) {
        params.push(
          notificationId,
          channel.channel,
          recipientId,
          channel.state,
          channel.dueAt?.toISOString() ?? null,
          now.toISOString(),
        );
        count++;
      }
    }
    if (count === 0) return;
    await em.execute(
      `insert into "notification_deliveries" ("notification_id", "channel", "recipient_id", "state", "attempts", ` +
        `"due_at", "updated_at") values ${Array.from({ length: count }, () => "(?, ?, ?, ?, 0, ?, ?)").join(", ")}`,
      params,
      "run",
    );
  }

  /** A fresh EntityManager, for a transaction of the caller's. */
  fork(): EntityManager {
    return this.#em();
  }

  /** The recipient's last committed sequence (0 before their first notification). */
  async headSequence(recipientId: string): Promise<number> {
    const row: { last_sequence: string | number } | undefined = await this.#em().execute<{
      last_sequence: string | number;
    }>(`select "last_sequence" from "notification_heads" where "recipient_id" = ?`, [recipientId], "get");
    return row === undefined ? 0 : Number(row.last_sequence);
  }

  /** Notifications after `sequence`, oldest first (a stream's catch-up read). */
  async after(recipientId: string, sequence: number, limit: number): Promise<StoredNotification[]> {
    const rows = await this.#em().execute<NotificationRow[]>(
      `${select} where n."recipient_id" = ? and n."sequence" > ? order by n."sequence" limit ?`,
      [recipientId, sequence, limit],
      "all",
    );
    return rows.map(fromRow);
  }

  /** One page of the list, newest first. */
  async list(query: NotificationQuery): Promise<StoredNotification[]> {
    const params: (string | number)[] = [query.recipientId];
    let where = `n."recipient_id" = ?`;
    if (query.unreadOnly) where += ` and n."read_at" is null`;
    if (query.categories.length > 0) {
      where += ` and n."category" in (${query.categories.map(() => "?").join(", ")})`;
      params.push(...query.categories);
    }
    if (query.beforeSequence !== undefined) {
      where += ` and n."sequence" < ?`;
      params.push(query.beforeSequence);
    }
    params.push(query.limit);
    const rows = await this.#em().execute<NotificationRow[]>(
      `${select} where ${where} order by n."sequence" desc limit ?`,
      params,
      "all",
    );
    return rows.map(fromRow);
  }

  /** Unread notifications of a recipient, for the badge. */
  async unreadCount(recipientId: string): Promise<number> {
    const row = await this.#em().execute<{ count: string | number }>(
      `select count(*) as "count" from "notifications" where "recipient_id" = ? and "read_at" is null`,
      [recipientId],
      "get",
    );
    return Number(row.count);
  }

  /** Marks the named notifications read (unread ones only) inside `em`'s transaction; how many changed. */
  async markRead(
    em: EntityManager,
    recipientId: string,
    selector: { ids: readonly string[] } | { through: Date },
    now: Date,
  ): Promise<number> {
    const params: string[] = [now.toISOString(), recipientId];
    let where: string;
    if ("ids" in selector) {
      if (selector.ids.length === 0) return 0;
      where = `"id" in (${selector.ids.map(() => "?").join(", ")})`;
      params.push(...selector.ids);
    } else {
      where = `"created_at" <= ?`;
      params.push(selector.through.toISOString());
    }
    const result = await em.execute<{ affectedRows: number }>(
      `update "notifications" set "read_at" = ? where "recipient_id" = ? and "read_at" is null and ${where}`,
      params,
      "run",
    );
    return result.affectedRows;
  }
}

function fromRow(row: NotificationRow): StoredNotification {
  return {
    id: row.id,
    recipientId: row.recipient_id,
    sequence: Number(row.sequence),
    aboutPatientId: row.about_patient_id ?? undefined,
    category: row.category,
    priority: row.priority,
    title: row.title,
    body: row.body,
    subjectResource: row.subject_resource ?? undefined,
    expireTime: row.expire_at === null ? undefined : new Date(row.expire_at),
    createTime: new Date(row.created_at),
    readTime: row.read_at === null ? undefined : new Date(row.read_at),
    deliveries: (row.deliveries ?? []).map(
      (d): ChannelDeliveryView => ({ channel: d.channel, state: d.state, updateTime: new Date(d.updated_at) }),
    ),
  };
}
