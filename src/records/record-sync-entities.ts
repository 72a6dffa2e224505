import { defineEntity, p } from "@mikro-orm/core";

/** What a change-feed entry says happened to a record, as stored. */
export const changeTypes = ["created", "updated", "deleted"] as const;
export type ChangeTypeName = (typeof changeTypes)[number];

/** Which table a change-feed entry's record lives in. */
export const changeOrigins = ["record", "summary"] as const;
export type ChangeOriginName = (typeof changeOrigins)[number];

/** Device platforms, as stored (the lower-case short names of Device.Platform). */
export const devicePlatforms = ["android", "ios", "web", "field_device"] as const;
export type DevicePlatformName = (typeof devicePlatforms)[number];

/**
 * `record_feed_heads`: the last change sequence number given out per patient. Every
 * change takes the next number by updating this row, whose lock is held until the
 * change commits: a patient's changes therefore commit in sequence order, and a client
 * that has seen number n can never later miss a change numbered below n.
 */
export const RecordFeedHeadEntity = defineEntity({
  name: "RecordFeedHead",
  tableName: "record_feed_heads",
  properties: {
    patientId: p.uuid().primary(),
    lastSeq: p.bigint("number"),
  },
});

/**
 * `record_changes`: the change feed (issue #6, sync), one row per create, update or
 * delete of a record, numbered per patient by `record_feed_heads`. Consultation
 * summaries (`consultation_summaries`, the consultations context's) enter it when the
 * feed is read (RecordFeed.catchUpSummaries). Ids and times only: the content stays
 * in its own table.
 */
export const RecordChangeEntity = defineEntity({
  name: "RecordChange",
  tableName: "record_changes",
  properties: {
    patientId: p.uuid().primary(),
    seq: p.bigint("number").primary().autoincrement(false),
    recordId: p.uuid(),
    origin: p.enum(changeOrigins),
    type: p.enum(changeTypes),
    changedAt: p.datetime(3),
  },
  indexes: [
    // The latest change of each record (the feed hands each record once, at its latest change).
    { name: "record_changes_record_idx", properties: ["patientId", "recordId", "seq"] },
  ],
});

/**
 * `record_pushes`: every offline change a client uploaded and that was applied (or
 * kept as a conflict), by its client id, so a second upload of it changes nothing.
 */
export const RecordPushEntity = defineEntity({
  name: "RecordPush",
  tableName: "record_pushes",
  properties: {
    patientId: p.uuid().primary(),
    clientId: p.uuid().primary(),
    /** `applied` or `conflict`. */
    outcome: p.string().length(16),
    recordId: p.uuid(),
    /** For a conflict: the record keeping the client's version. */
    conflictRecordId: p.uuid().nullable(),
    pushedAt: p.datetime(3),
  },
});

/**
 * `patient_devices`: devices that receive a patient's offline bundle encrypted to
 * their public key (a public JWK, stored as sent). The push token is a credential of
 * the device, sealed like record content (envelope encryption bound to this row).
 */
export const PatientDeviceEntity = defineEntity({
  name: "PatientDevice",
  tableName: "patient_devices",
  properties: {
    id: p.uuid().primary(),
    patientId: p.uuid(),
    displayName: p.string().length(100),
    platform: p.enum(devicePlatforms),
    publicKeyJwk: p.text(),
    keyThumbprint: p.string().length(64),
    pushTokenSealed: p.text().nullable(),
    dataKeyWrapped: p.text(),
    createRequestId: p.uuid(),
    createdBy: p.string().length(255),
    version: p.integer(),
    createdAt: p.datetime(3),
    lastSeenAt: p.datetime(3).nullable(),
  },
  uniques: [{ name: "patient_devices_create_request_unique", properties: ["patientId", "createRequestId"] }],
  indexes: [{ name: "patient_devices_patient_idx", properties: ["patientId", "createdAt", "id"] }],
});

/** The sync entities (registered through `recordEntities`). */
export const recordSyncEntities = [RecordFeedHeadEntity, RecordChangeEntity, RecordPushEntity, PatientDeviceEntity];
