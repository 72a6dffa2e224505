import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { type Record as RecordProto, RecordKind } from "../../gen/telemed/patient/v1/record_pb.js";
import {
  ClientRecordChange_Operation as Operation,
  ClientRecordChangeResult_Outcome as Outcome,
  type RecordChange,
  RecordChange_Type as ChangeType,
} from "../../gen/telemed/patient/v1/record_sync_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ClientRecordChangeSchema } from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import {
  addRecord,
  allergy,
  note,
  prescription,
  type RecordClient,
  recordTestEnv,
  records,
  testResult,
} from "./record-fixtures.ts";
import { guardianOf } from "../support/guardian-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let asha: TestSession;

beforeAll(async () => {
  t = await startTestApp(recordTestEnv, { clock });
  [patient, other, asha] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
  ]);
  // A booked consultation gives Dr. Asha Rao her care relationship with the patient.
  await bookFirstFree(consultations(t, patient), patient.patient, clock);
}, 120_000);
afterAll(async () => {
  await t?.close();
});

type ChangeInit = MessageInitShape<typeof ClientRecordChangeSchema>;

/** Every change after `cursor`, page by page; the pages and the final cursor. */
async function pullAll(client: RecordClient, parent: string, cursor: string, pageSize: number) {
  const changes: RecordChange[] = [];
  let pages = 0;
  let next = cursor;
  for (;;) {
    const page = await client.pullRecordChanges({ parent, cursor: next, pageSize });
    expect(page.changes.length).toBeLessThanOrEqual(pageSize);
    expect(page.nextCursor).not.toBe("");
    changes.push(...page.changes);
    pages += 1;
    next = page.nextCursor;
    if (!page.hasMore) break;
  }
  return { changes, pages, cursor: next };
}

function summary(changes: readonly RecordChange[]) {
  return changes.map((c) => [c.type, c.record?.name] as const);
}

function noteText(record: RecordProto | undefined): string {
  return record?.details.case === "patientNote" ? record.details.value.text : "";
}

describe("TST-PT007-2 a patient syncs after regaining connectivity", () => {
  it("gets every change made while offline in order, paged with tombstones, and uploads its own without losing either side", async () => {
    const doctor = records(t, asha);
    const phone = records(t, patient);
    const web = records(t, patient);

    // Before going offline: the doctor's records and the patient's own notes.
    const rx = await addRecord(doctor, patient.patient, prescription("Metformin", 2));
    const dust = await addRecord(doctor, patient.patient, allergy("Dust", 5));
    const diary = await addRecord(web, patient.patient, note("Sugar high after lunch"));
    const old = await addRecord(web, patient.patient, note("Old note"));

    // The phone syncs from the start, two changes a page.
    const first = await pullAll(phone, patient.patient, "", 2);
    expect(first.pages).toBe(2);
    expect(summary(first.changes)).toEqual([
      [ChangeType.CREATED, rx.name],
      [ChangeType.CREATED, dust.name],
      [ChangeType.CREATED, diary.name],
      [ChangeType.CREATED, old.name],
    ]);
    expect(first.changes[0]?.record?.details).toEqual(rx.details);
    const cursor = first.cursor;

    // Offline period. The doctor adds, updates and deletes records ...
    const lab = await addRecord(doctor, patient.patient, testResult("HbA1c", 0));
    const changedRx = prescription("Metformin", 2);
    if (changedRx.details?.case === "prescription") changedRx.details.value.frequency = "once daily";
    const { record: rxNow } = await doctor.updateRecord({
      record: { ...changedRx, name: rx.name, etag: rx.etag },
      updateMask: { paths: ["prescription"] },
    });
    await doctor.deleteRecord({ name: dust.name, etag: dust.etag, reason: "entered in error" });
    // ... and the patient edits their diary note on the web meanwhile.
    const { record: diaryOnWeb } = await web.updateRecord({
      record: { ...note("Sugar high after lunch; walked 20 min"), name: diary.name, etag: diary.etag },
      updateMask: { paths: ["patient_note"] },
    });

    // The phone, offline, wrote two notes, edited the diary (from the old version) and deleted the old note.
    const ownClientId = randomUUID();
    const upload: ChangeInit[] = [
      { clientId: randomUUID(), operation: Operation.CREATE, record: note("Headache, 6/10", 0) },
      {
        clientId: randomUUID(),
        operation: Operation.CREATE,
        record: { ...note("Took paracetamol 500 mg", 0), clientId: ownClientId },
      },
      {
        clientId: randomUUID(),
        operation: Operation.UPDATE,
        record: { ...note("Sugar high after lunch; skipped dinner"), name: diary.name },
        baseEtag: diary.etag,
      },
      {
        clientId: randomUUID(),
        operation: Operation.DELETE,
        record: { ...note("x"), name: old.name },
        baseEtag: old.etag,
      },
    ];
    const pushed = await phone.pushRecordChanges({ parent: patient.patient, changes: upload });
    expect(pushed.results.map((r) => [r.clientId, r.outcome])).toEqual([
      [upload[0]?.clientId, Outcome.APPLIED],
      [upload[1]?.clientId, Outcome.APPLIED],
      [upload[2]?.clientId, Outcome.CONFLICT],
      [upload[3]?.clientId, Outcome.APPLIED],
    ]);
    const [headache, paracetamol, conflict, deletion] = pushed.results;
    // Created offline: the client id is the change's unless the record had its own.
    expect(headache?.record?.clientId).toBe(upload[0]?.clientId);
    expect(paracetamol?.record?.clientId).toBe(ownClientId);
    // The conflict kept both: the server's version unchanged, the phone's as a copy naming it.
    expect(conflict?.record?.name).toBe(diary.name);
    expect(noteText(conflict?.record)).toBe("Sugar high after lunch; walked 20 min");
    expect(conflict?.record?.etag).toBe(diaryOnWeb?.etag);
    expect(conflict?.conflictCopy?.conflictOf).toBe(diary.name);
    expect(noteText(conflict?.conflictCopy)).toBe("Sugar high after lunch; skipped dinner");
    expect(deletion?.record?.deleteTime).toBeDefined();

    // Back online: every change since the phone's cursor, in commit order, paged, tombstones included.
    const second = await pullAll(phone, patient.patient, cursor, 3);
    expect(second.pages).toBe(3);
    expect(summary(second.changes)).toEqual([
      [ChangeType.CREATED, lab.name],
      [ChangeType.UPDATED, rx.name],
      [ChangeType.DELETED, dust.name],
      [ChangeType.UPDATED, diary.name],
      [ChangeType.CREATED, headache?.record?.name],
      [ChangeType.CREATED, paracetamol?.record?.name],
      [ChangeType.CREATED, conflict?.conflictCopy?.name],
      [ChangeType.DELETED, old.name],
    ]);
    const byName = new Map(second.changes.map((c) => [c.record?.name, c]));
    expect(byName.get(rx.name)?.record?.etag).toBe(rxNow?.etag);
    expect(byName.get(rx.name)?.record?.details).toEqual(rxNow?.details);
    const tombstone = byName.get(dust.name)?.record;
    expect(tombstone).toMatchObject({ name: dust.name, kind: RecordKind.ALLERGY });
    expect(tombstone?.deleteTime).toBeDefined();
    expect(tombstone?.details.case).toBeUndefined();
    expect(noteText(byName.get(diary.name)?.record)).toBe("Sugar high after lunch; walked 20 min");
    expect(byName.get(conflict?.conflictCopy?.name)?.record?.conflictOf).toBe(diary.name);
    const times = second.changes.map((c) => Number(c.changeTime?.seconds));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // The push's cursor covers everything: nothing after it.
    expect(pushed.nextCursor).toBe(second.cursor);

    // Uploading the same changes again (the answer was lost) changes nothing.
    const again = await phone.pushRecordChanges({ parent: patient.patient, changes: upload });
    expect(again.results.map((r) => r.outcome)).toEqual(Array(4).fill(Outcome.ALREADY_APPLIED));
    expect(again.results[0]?.record?.name).toBe(headache?.record?.name);
    expect(again.results[2]?.conflictCopy?.name).toBe(conflict?.conflictCopy?.name);
    const after = await phone.pullRecordChanges({ parent: patient.patient, cursor: second.cursor });
    expect(after).toMatchObject({ changes: [], hasMore: false, nextCursor: second.cursor });
    const history = await web.listRecords({ parent: patient.patient, kinds: [RecordKind.PATIENT_NOTE] });
    expect(history.records.map((r) => r.name).sort()).toEqual(
      [diary.name, headache?.record?.name, paracetamol?.record?.name, conflict?.conflictCopy?.name].sort(),
    );

    // The pull and every uploaded change are in the patient's access view.
    const audit = createClient(
      AuditService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
    );
    const events = (await audit.listAccessEvents({ parent: patient.patient, pageSize: 100, includeOwn: true }))
      .accessEvents;
    expect(events.some((e) => e.resource === patient.patient && e.action === AuditAction.EXPORT)).toBe(true);
    expect(events.some((e) => e.resource === headache?.record?.name && e.action === AuditAction.CREATE)).toBe(true);
    expect(events.some((e) => e.resource === old.name && e.action === AuditAction.DELETE)).toBe(true);
  });

  it("hands over a record changed several times once, at its last change, and a record created and deleted as a tombstone", async () => {
    const doctor = records(t, asha);
    const phone = records(t, patient);
    const { cursor } = await pullAll(phone, patient.patient, "", 500);
    const rx = await addRecord(doctor, patient.patient, prescription("Atorvastatin", 1));
    let etag = rx.etag;
    for (const frequency of ["once daily", "at night"]) {
      const changed = prescription("Atorvastatin", 1);
      if (changed.details?.case === "prescription") changed.details.value.frequency = frequency;
      const { record } = await doctor.updateRecord({
        record: { ...changed, name: rx.name, etag },
        updateMask: { paths: ["prescription"] },
      });
      etag = record?.etag ?? "";
    }
    const brief = await addRecord(doctor, patient.patient, allergy("Mould", 1));
    await doctor.deleteRecord({ name: brief.name, etag: brief.etag });
    const { changes } = await pullAll(phone, patient.patient, cursor, 10);
    expect(summary(changes)).toEqual([
      [ChangeType.CREATED, rx.name],
      [ChangeType.DELETED, brief.name],
    ]);
    expect(changes[0]?.record?.etag).toBe(etag);
  });

  it("keeps an offline edit of a note deleted since, and deletes nothing changed since the client's version", async () => {
    const web = records(t, patient);
    const gone = await addRecord(web, patient.patient, note("Knee hurts"));
    const edited = await addRecord(web, patient.patient, note("Rash on arm"));
    await web.deleteRecord({ name: gone.name, etag: gone.etag });
    const { record: newer } = await web.updateRecord({
      record: { ...note("Rash on arm, spreading"), name: edited.name, etag: edited.etag },
      updateMask: { paths: ["patient_note"] },
    });
    const { results } = await records(t, patient).pushRecordChanges({
      parent: patient.patient,
      changes: [
        {
          clientId: randomUUID(),
          operation: Operation.UPDATE,
          record: { ...note("Knee hurts, swollen"), name: gone.name },
          baseEtag: gone.etag,
        },
        {
          clientId: randomUUID(),
          operation: Operation.DELETE,
          record: { ...note("Rash on arm"), name: edited.name },
          baseEtag: edited.etag,
        },
      ],
    });
    expect(results.map((r) => r.outcome)).toEqual([Outcome.CONFLICT, Outcome.CONFLICT]);
    expect(results[0]?.record).toMatchObject({ name: gone.name, kind: RecordKind.PATIENT_NOTE });
    expect(results[0]?.record?.deleteTime).toBeDefined();
    expect(results[0]?.conflictCopy?.conflictOf).toBe(gone.name);
    expect(noteText(results[0]?.conflictCopy)).toBe("Knee hurts, swollen");
    expect(results[1]?.record?.etag).toBe(newer?.etag);
    expect(results[1]?.conflictCopy).toBeUndefined();
    expect(noteText((await web.getRecord({ name: edited.name })).record)).toBe("Rash on arm, spreading");
  });

  it("rejects uploads the patient may not make, each on its own, and applies the rest", async () => {
    const doctor = records(t, asha);
    const rx = await addRecord(doctor, patient.patient, prescription("Ibuprofen", 1));
    const othersNote = await addRecord(records(t, other), other.patient, note("Not yours"));
    const { results } = await records(t, patient).pushRecordChanges({
      parent: patient.patient,
      changes: [
        { clientId: randomUUID(), operation: Operation.CREATE, record: prescription("Self-prescribed", 0) },
        {
          clientId: randomUUID(),
          operation: Operation.UPDATE,
          record: { ...note("mine now"), name: rx.name },
          baseEtag: rx.etag,
        },
        {
          clientId: randomUUID(),
          operation: Operation.UPDATE,
          record: { ...note("mine now"), name: othersNote.name },
          baseEtag: othersNote.etag,
        },
        { clientId: randomUUID(), operation: Operation.CREATE, record: note("Fine") },
      ],
    });
    expect(results.map((r) => [r.outcome, r.error?.code])).toEqual([
      [Outcome.REJECTED, Code.PermissionDenied],
      [Outcome.REJECTED, Code.PermissionDenied],
      [Outcome.REJECTED, Code.NotFound],
      [Outcome.APPLIED, undefined],
    ]);
    expect(results[1]?.record).toBeUndefined();
  });
});

describe("change feed access and input", () => {
  it("answers NOT_FOUND for another patient's feed, and lets a guardian with the view grant pull but not push", async () => {
    const mine = records(t, other);
    expect((await refusal(mine.pullRecordChanges({ parent: patient.patient }))).code).toBe(Code.NotFound);
    const push = (client: RecordClient) =>
      client.pushRecordChanges({
        parent: patient.patient,
        changes: [{ clientId: randomUUID(), operation: Operation.CREATE, record: note("sneaky") }],
      });
    expect((await refusal(push(mine))).code).toBe(Code.NotFound);

    const guardian = await guardianOf(t, patient, [FamilyGrant.VIEW_RECORDS]);
    const pulled = await records(t, guardian).pullRecordChanges({ parent: patient.patient, pageSize: 1 });
    expect(pulled.changes).toHaveLength(1);
    expect(pulled.hasMore).toBe(true);
    expect((await refusal(push(records(t, guardian)))).code).toBe(Code.NotFound);
  });

  it("refuses forged cursors and bad requests with INVALID_ARGUMENT", async () => {
    const client = records(t, patient);
    const { nextCursor } = await client.pullRecordChanges({ parent: patient.patient, pageSize: 1 });
    const othersCursor = (await records(t, other).pullRecordChanges({ parent: other.patient })).nextCursor;
    const id = patient.patient.slice("patients/".length);
    const ahead = Buffer.from(`rf1:${id}:999999999`).toString("base64url");
    const negative = Buffer.from(`rf1:${id}:-1`).toString("base64url");
    for (const cursor of ["not-a-cursor", "%%%", othersCursor, ahead, negative, `${nextCursor}x`]) {
      expect(await refusal(client.pullRecordChanges({ parent: patient.patient, cursor }))).toMatchObject({
        code: Code.InvalidArgument,
      });
    }
    expect((await refusal(client.pullRecordChanges({ parent: patient.patient, pageSize: 501 }))).code).toBe(
      Code.InvalidArgument,
    );
    const bad: ChangeInit[][] = [
      [],
      [{ clientId: "not-a-uuid", operation: Operation.CREATE, record: note("x") }],
      [{ clientId: randomUUID(), operation: Operation.UNSPECIFIED, record: note("x") }],
      // UPDATE and DELETE need the record's name and the etag they were based on.
      [{ clientId: randomUUID(), operation: Operation.UPDATE, record: note("x") }],
      [{ clientId: randomUUID(), operation: Operation.CREATE }],
      [{ clientId: randomUUID(), operation: Operation.CREATE, record: { ...note("x"), effectiveTime: future() } }],
    ];
    for (const changes of bad) {
      expect((await refusal(client.pushRecordChanges({ parent: patient.patient, changes }))).code).toBe(
        Code.InvalidArgument,
      );
    }
  });
});

function future() {
  return timestampFromMs(Date.now() + 86_400_000);
}
