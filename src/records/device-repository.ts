import type { EntityManager } from "@mikro-orm/postgresql";
import type { DevicePlatformName } from "./record-sync-entities.ts";

/** One row of `patient_devices`, as the driver returns it. */
export interface DeviceRow {
  readonly id: string;
  readonly patient_id: string;
  readonly display_name: string;
  readonly platform: DevicePlatformName;
  readonly public_key_jwk: string;
  readonly key_thumbprint: string;
  readonly push_token_sealed: string | null;
  readonly data_key_wrapped: string;
  readonly create_request_id: string;
  readonly created_by: string;
  readonly version: number;
  readonly created_at: string | Date;
  readonly last_seen_at: string | Date | null;
}

/** A device to insert. */
export interface NewDeviceRow {
  readonly id: string;
  readonly patientId: string;
  readonly displayName: string;
  readonly platform: DevicePlatformName;
  readonly publicKeyJwk: string;
  readonly keyThumbprint: string;
  readonly pushTokenSealed: string | null;
  readonly dataKeyWrapped: string;
  readonly createRequestId: string;
  readonly createdBy: string;
  readonly now: Date;
}

/** SQL of `patient_devices`; every query is scoped to one patient. */
export class DeviceRepository {
  async get(em: EntityManager, patientId: string, id: string): Promise<DeviceRow | undefined> {
    return em.execute<DeviceRow>(
      `select * from "patient_devices" where "id" = ? and "patient_id" = ?`,
      [id, patientId],
      "get",
    );
  }

  async findByRequest(em: EntityManager, patientId: string, requestId: string): Promise<DeviceRow | undefined> {
    return em.execute<DeviceRow>(
      `select * from "patient_devices" where "patient_id" = ? and "create_request_id" = ?`,
      [patientId, requestId],
      "get",
    );
  }

  async count(em: EntityManager, patientId: string): Promise<number> {
    const row = await em.execute<{ n: string | number }>(
      `select count(*) as "n" from "patient_devices" where "patient_id" = ?`,
      [patientId],
      "get",
    );
    return Number(row?.n ?? 0);
  }

  /** Inserts a device; false when a device with the same request id won a race. */
  async insert(em: EntityManager, row: NewDeviceRow): Promise<boolean> {
    const result = await em.execute<{ affectedRows: number }>(
      `insert into "patient_devices" ("id", "patient_id", "display_name", "platform", "public_key_jwk", "key_thumbprint", ` +
        `"push_token_sealed", "data_key_wrapped", "create_request_id", "created_by", "version", "created_at") ` +
        `values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) on conflict on constraint "patient_devices_create_request_unique" do nothing`,
      [
        row.id,
        row.patientId,
        row.displayName,
        row.platform,
        row.publicKeyJwk,
        row.keyThumbprint,
        row.pushTokenSealed,
        row.dataKeyWrapped,
        row.createRequestId,
        row.createdBy,
        row.now.toISOString(),
      ],
      "run",
    );
    return result.affectedRows === 1;
  }

  /** One page of the patient's devices, oldest first, after `(createdAt, id)`. */
  async list(
    em: EntityManager,
    patientId: string,
    after: { createdMs: number; id: string } | undefined,
    limit: number,
  ): Promise<DeviceRow[]> {
    const params: (string | number)[] = [patientId];
    let sql = `select * from "patient_devices" where "patient_id" = ?`;
    if (after !== undefined) {
      sql += ` and ("created_at", "id") > (?, ?)`;
      params.push(new Date(after.createdMs).toISOString(), after.id);
    }
    params.push(limit);
    return em.execute<DeviceRow[]>(`${sql} order by "created_at", "id" limit ?`, params, "all");
  }

  /** Deletes a device; false when it was not there. */
  async delete(em: EntityManager, patientId: string, id: string): Promise<boolean> {
    const result = await em.execute<{ affectedRows: number }>(
      `delete from "patient_devices" where "id" = ? and "patient_id" = ?`,
      [id, patientId],
      "run",
    );
    return result.affectedRows === 1;
  }

  async touch(em: EntityManager, id: string, now: Date): Promise<void> {
    await em.execute(`update "patient_devices" set "last_seen_at" = ? where "id" = ?`, [now.toISOString(), id], "run");
  }
}
