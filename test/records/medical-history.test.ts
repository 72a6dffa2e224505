import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuditAction, AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { RecordKind, RecordSource } from "../../gen/telemed/patient/v1/record_pb.js";
import { ConnectError } from "@connectrpc/connect";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import {
  addRecord,
  allergy,
  daysAgo,
  note,
  prescription,
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
let vikram: TestSession;
let admin: TestSession;
/** `patients/{p}/consultations/{c}` of the patient with Dr. Asha Rao. */
let consultation: string;
/** The summary of that consultation, `patients/{p}/records/{r}`. */
let summaryRecord: string;

beforeAll(async () => {
  t = await startTestApp(recordTestEnv, { clock });
  [patient, other, asha, vikram, admin] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
    staffSession(t, "doctor", { doctorId: "vikram-iyer" }),
    staffSession(t, "admin"),
  ]);
  // A completed consultation with Dr. Asha Rao: her care relationship, and a summary in the history.
  const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock);
  consultation = booked.consultation.name;
  clock.travelTo(new Date(booked.startMs - 5 * 60_000));
  await consultations(t, asha).startConsultation({ name: consultation });
  const completed = await consultations(t, asha).completeConsultation({
    name: consultation,
    summary: { chiefComplaint: "Sore throat", plan: "Amoxicillin for five days" },
  });
  summaryRecord = completed.consultation?.summaryRecord ?? "";
  clock.reset();
}, 120_000);
afterAll(async () => {
  await t?.close();
});

function accessEvents(session: TestSession) {
  return createClient(
    AuditService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  ).listAccessEvents({ parent: session.patient, pageSize: 100, includeOwn: true });
}

describe("TST-PT004-1 a patient reads their medical history as one timeline", () => {
  it("shows records of several kinds, newest first, paged and filtered, from doctors, services and the patient", async () => {
    const doctor = records(t, asha);
    const rx = await addRecord(doctor, patient.patient, { ...prescription("Amoxicillin", 3), consultation });
    const lab = await addRecord(doctor, patient.patient, { ...testResult("Glucose", 2), relatedRecords: [rx.name] });
    const pollen = await addRecord(records(t, admin), patient.patient, allergy("Pollen", 10));
    const mine = await addRecord(records(t, patient), patient.patient, note("Headache since Monday", 0));
    expect(rx).toMatchObject({ kind: RecordKind.PRESCRIPTION, source: RecordSource.CLINICIAN, consultation });
    expect(rx.author).toMatchObject({
      principal: asha.account.replace("accounts/", "doctors/"),
      role: ActorRole.DOCTOR,
    });
    expect(mine).toMatchObject({ kind: RecordKind.PATIENT_NOTE, source: RecordSource.PATIENT });
    // The consultation's summary is part of the history too.
    const summary = { summaryRecord: { name: summaryRecord } };

    const client = records(t, patient);
    const all = await client.listRecords({ parent: patient.patient });
    expect(all.records.map((r) => r.name)).toEqual(
      expect.arrayContaining([rx.name, lab.name, pollen.name, mine.name, summary.summaryRecord?.name]),
    );
    const times = all.records.map((r) => Number(r.effectiveTime?.seconds));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const read = all.records.find((r) => r.name === rx.name);
    expect(read?.details).toEqual(rx.details);
    expect(all.records.find((r) => r.name === lab.name)?.relatedRecords).toEqual([rx.name]);
    expect(all.records.find((r) => r.kind === RecordKind.CONSULTATION_SUMMARY)?.details.value).toMatchObject({
      chiefComplaint: "Sore throat",
    });

    // Paged: two at a time, the same records in the same order, no repeats.
    const paged: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listRecords({ parent: patient.patient, pageSize: 2, pageToken });
      expect(page.records.length).toBeLessThanOrEqual(2);
      paged.push(...page.records.map((r) => r.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(paged).toEqual(all.records.map((r) => r.name));

    // The seed's REST route serves the same timeline.
    const rest = await fetch(`${t.baseUrl}/${patient.patient}/history?pageSize=2`, { headers: patient.headers });
    expect(rest.status).toBe(200);
    const restPage = (await rest.json()) as { records: { name: string }[]; nextPageToken: string };
    expect(restPage.records.map((r) => r.name)).toEqual(all.records.slice(0, 2).map((r) => r.name));

    // Filtered by kind, by time and by consultation.
    const onlyRx = await client.listRecords({ parent: patient.patient, kinds: [RecordKind.PRESCRIPTION] });
    expect(onlyRx.records.map((r) => r.name)).toEqual([rx.name]);
    const lastWeek = await client.listRecords({
      parent: patient.patient,
      startTime: daysAgo(7),
      endTime: timestampFromMs(Date.now() - 86_400_000),
    });
    expect(lastWeek.records.map((r) => r.name)).toEqual([lab.name, rx.name]);
    const ofConsultation = await client.listRecords({ parent: patient.patient, consultation });
    expect(ofConsultation.records.map((r) => r.name).sort()).toEqual([rx.name, summary.summaryRecord?.name].sort());
    // A page token belongs to its filters.
    const first = await client.listRecords({ parent: patient.patient, pageSize: 1 });
    expect(
      (
        await refusal(
          client.listRecords({
            parent: patient.patient,
            pageSize: 1,
            pageToken: first.nextPageToken,
            kinds: [RecordKind.ALLERGY],
          }),
        )
      ).code,
    ).toBe(Code.InvalidArgument);

    // One record, and the read is in the patient's access view.
    expect((await client.getRecord({ name: pollen.name })).record?.details).toEqual(pollen.details);
    expect((await client.getRecord({ name: summary.summaryRecord?.name ?? "" })).record?.kind).toBe(
      RecordKind.CONSULTATION_SUMMARY,
    );
    const events = (await accessEvents(patient)).accessEvents;
    expect(events.some((e) => e.resource === pollen.name && e.action === AuditAction.READ)).toBe(true);
    expect(events.some((e) => e.resource === patient.patient && e.action === AuditAction.READ)).toBe(true);
  });

  it("amends a record with a field mask and etag, and deletes it leaving it out of the history", async () => {
    const doctor = records(t, asha);
    const rx = await addRecord(doctor, patient.patient, prescription("Paracetamol", 1));
    const changed = prescription("Paracetamol", 1);
    if (changed.details?.case === "prescription") changed.details.value.frequency = "three times daily";
    const { record: updated } = await doctor.updateRecord({
      record: { ...changed, name: rx.name, etag: rx.etag },
      updateMask: { paths: ["prescription"] },
    });
    expect(updated?.details.case === "prescription" && updated.details.value.frequency).toBe("three times daily");
    expect(updated?.etag).not.toBe(rx.etag);
    // A stale etag is ABORTED; changing the kind is INVALID_ARGUMENT.
    expect(
      await refusal(
        doctor.updateRecord({
          record: { ...changed, name: rx.name, etag: rx.etag },
          updateMask: { paths: ["prescription"] },
        }),
      ),
    ).toMatchObject({ code: Code.Aborted, reason: "ETAG_MISMATCH" });
    expect(
      (
        await refusal(
          doctor.updateRecord({ record: { ...allergy("Dust"), name: rx.name }, updateMask: { paths: ["allergy"] } }),
        )
      ).code,
    ).toBe(Code.InvalidArgument);
    // The patient cannot edit the doctor's record.
    expect(
      await refusal(
        records(t, patient).updateRecord({
          record: { ...changed, name: rx.name },
          updateMask: { paths: ["prescription"] },
        }),
      ),
    ).toMatchObject({ code: Code.PermissionDenied, reason: "RECORD_NOT_EDITABLE" });

    await doctor.deleteRecord({ name: rx.name, etag: updated?.etag ?? "", reason: "entered in error" });
    expect((await refusal(records(t, patient).getRecord({ name: rx.name }))).code).toBe(Code.NotFound);
    const history = await records(t, patient).listRecords({ parent: patient.patient });
    expect(history.records.map((r) => r.name)).not.toContain(rx.name);
    expect((await refusal(doctor.deleteRecord({ name: rx.name }))).code).toBe(Code.NotFound);
  });

  it("replays a CreateRecord with the same request id, and refuses the id for different content", async () => {
    const client = records(t, patient);
    const requestId = randomUUID();
    const dizzy = note("Dizzy", 1);
    const first = await client.createRecord({ parent: patient.patient, record: dizzy, requestId });
    const again = await client.createRecord({ parent: patient.patient, record: dizzy, requestId });
    expect(again.record?.name).toBe(first.record?.name);
    expect(
      await refusal(client.createRecord({ parent: patient.patient, record: note("Something else"), requestId })),
    ).toMatchObject({ code: Code.InvalidArgument, reason: "REQUEST_ID_REUSED" });
  });
});

describe("a history page with several consultation summaries", () => {
  it("shows each consultation's own summary, newest first, read for the whole page at once", async () => {
    const someone = await signUpPatient(t);
    const complaints = ["Persistent cough", "Follow-up on the cough"];
    for (const chiefComplaint of complaints) {
      const booked = await bookFirstFree(consultations(t, someone), someone.patient, clock);
      clock.travelTo(new Date(booked.startMs - 5 * 60_000));
      await consultations(t, asha).startConsultation({ name: booked.consultation.name });
      await consultations(t, asha).completeConsultation({
        name: booked.consultation.name,
        summary: { chiefComplaint, plan: "Rest and fluids" },
      });
      clock.reset();
    }
    const { records: page } = await records(t, someone).listRecords({
      parent: someone.patient,
      kinds: [RecordKind.CONSULTATION_SUMMARY],
    });
    expect(page.map((r) => (r.details.value as { chiefComplaint?: string }).chiefComplaint)).toEqual(
      [...complaints].reverse(),
    );
  });
});

describe("concurrent creates (group-committed)", () => {
  it("stores each record once with its feed entry and audit entry, and answers retries racing it with the same record", async () => {
    const writer = await signUpPatient(t);
    const client = records(t, writer);
    const retried = randomUUID();
    // One request sent eight times (its effective time fixed once, as a client retrying would).
    const retriedNote = note("Retried note");
    const texts = Array.from({ length: 16 }, (_, i) => `Concurrent note ${i}`);
    // Sixteen new notes and eight copies of one more, all in flight at once.
    const answers = await Promise.all([
      ...texts.map((text) =>
        client.createRecord({ parent: writer.patient, record: note(text), requestId: randomUUID() }),
      ),
      ...Array.from({ length: 8 }, () =>
        client.createRecord({ parent: writer.patient, record: retriedNote, requestId: retried }),
      ),
    ]);
    const names = answers.map((answer) => answer.record?.name ?? "");
    expect(new Set(names.slice(0, 16)).size).toBe(16);
    expect(new Set(names.slice(16)).size).toBe(1);
    const history = await client.listRecords({ parent: writer.patient, pageSize: 100 });
    expect(history.records.map((r) => r.name).sort()).toEqual([...new Set(names)].sort());
    // The change feed numbers each creation once, with no gap or repeat.
    const feed = await client.pullRecordChanges({ parent: writer.patient, pageSize: 100 });
    expect(feed.changes.map((c) => c.record?.name).sort()).toEqual([...new Set(names)].sort());
    // One CREATE entry naming each stored record in the patient's audit trail (replays are audited as calls on the parent).
    const events = (await accessEvents(writer)).accessEvents.filter(
      (e) => e.action === AuditAction.CREATE && e.resource.startsWith(`${writer.patient}/records/`),
    );
    expect(events.map((e) => e.resource).sort()).toEqual([...new Set(names)].sort());
  });
});

describe("creates for a deleted patient", () => {
  it("refuses them with NOT_FOUND and stores the live patient's record of the same batch", async () => {
    const leaving = await signUpPatient(t);
    await createClient(
      PatientService,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
    ).deletePatient({ name: leaving.patient });
    const client = records(t, admin);
    const [refused, stored] = await Promise.all([
      refusal(client.createRecord({ parent: leaving.patient, record: allergy("Latex"), requestId: randomUUID() })),
      client.createRecord({ parent: patient.patient, record: allergy("Dust"), requestId: randomUUID() }),
    ]);
    expect(refused.code).toBe(Code.NotFound);
    expect(stored.record?.name.startsWith(`${patient.patient}/records/`)).toBe(true);
  });
});

describe("TST-PT004-2 records of another patient, or without the right relationship, are refused", () => {
  it("answers NOT_FOUND for another patient's record, and audits the denial in that patient's access view", async () => {
    const theirs = await addRecord(records(t, other), other.patient, note("Private note"));
    const error = await refusal(records(t, patient).getRecord({ name: theirs.name }));
    expect(error.code).toBe(Code.NotFound);
    expect(error.message).not.toContain("Private");
    // Their record id under my own name is just as unknown.
    const ownName = `${patient.patient}/records/${theirs.name.split("/").at(-1)}`;
    expect((await refusal(records(t, patient).getRecord({ name: ownName }))).code).toBe(Code.NotFound);
    expect((await refusal(records(t, patient).listRecords({ parent: other.patient }))).code).toBe(Code.NotFound);
    const events = (await accessEvents(other)).accessEvents;
    expect(events.some((e) => e.resource === theirs.name && e.outcome === AuditOutcome.DENIED)).toBe(true);
  });

  it("lets a guardian with the view grant read the history, and not a guardian without it", async () => {
    const dependent = await signUpPatient(t);
    const record = await addRecord(records(t, dependent), dependent.patient, note("Child's note"));
    const withGrant = await guardianOf(t, dependent, [FamilyGrant.VIEW_RECORDS]);
    const withoutGrant = await guardianOf(t, dependent, [FamilyGrant.BOOK_CONSULTATIONS]);
    const seen = await records(t, withGrant).listRecords({ parent: dependent.patient });
    expect(seen.records.map((r) => r.name)).toEqual([record.name]);
    expect((await records(t, withGrant).getRecord({ name: record.name })).record?.name).toBe(record.name);
    expect((await refusal(records(t, withoutGrant).listRecords({ parent: dependent.patient }))).code).toBe(
      Code.NotFound,
    );
    expect((await refusal(records(t, withoutGrant).getRecord({ name: record.name }))).code).toBe(Code.NotFound);
    // The view grant does not write.
    expect(
      (
        await refusal(
          records(t, withGrant).createRecord({ parent: dependent.patient, record: note("x"), requestId: randomUUID() }),
        )
      ).code,
    ).toBe(Code.NotFound);
    const events = (await accessEvents(dependent)).accessEvents;
    expect(events.some((e) => e.proxy && e.actor?.role === ActorRole.GUARDIAN && e.action === AuditAction.READ)).toBe(
      true,
    );
  });

  it("refuses a doctor without a consultation relationship (NOT_FOUND, audited as a denial)", async () => {
    const error = await refusal(
      records(t, vikram).createRecord({ parent: patient.patient, record: prescription("X"), requestId: randomUUID() }),
    );
    expect(error).toMatchObject({ code: Code.NotFound, reason: "PATIENT_NOT_FOUND" });
    const events = (await accessEvents(patient)).accessEvents;
    expect(
      events.some(
        (e) =>
          e.action === AuditAction.CREATE && e.outcome === AuditOutcome.DENIED && e.actor?.role === ActorRole.DOCTOR,
      ),
    ).toBe(true);
    // A doctor with one may not link another doctor's consultation, nor another patient's record.
    expect(
      (
        await refusal(
          records(t, asha).createRecord({ parent: other.patient, record: prescription("X"), requestId: randomUUID() }),
        )
      ).code,
    ).toBe(Code.NotFound);
    // Doctors read through the consultation, not the history (the contract's policy).
    expect((await refusal(records(t, asha).listRecords({ parent: patient.patient }))).code).toBe(Code.PermissionDenied);
  });

  it("keeps patients to their own notes and clinicians to clinical records", async () => {
    expect(
      await refusal(
        records(t, patient).createRecord({
          parent: patient.patient,
          record: prescription("Y"),
          requestId: randomUUID(),
        }),
      ),
    ).toMatchObject({ code: Code.PermissionDenied, reason: "RECORD_KIND_NOT_ALLOWED" });
    expect(
      await refusal(
        records(t, asha).createRecord({ parent: patient.patient, record: note("Z"), requestId: randomUUID() }),
      ),
    ).toMatchObject({ code: Code.PermissionDenied, reason: "RECORD_KIND_NOT_ALLOWED" });
  });
});

describe("bad inputs are INVALID_ARGUMENT with the field named", () => {
  const violations = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (thrown) {
      const error = ConnectError.from(thrown);
      expect(error.code).toBe(Code.InvalidArgument);
      return error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field) ?? [];
    }
    throw new Error("expected INVALID_ARGUMENT");
  };

  it("refuses huge notes, invalid dates, unknown kinds, future times and foreign links", async () => {
    const client = records(t, patient);
    const create = (record: Parameters<typeof addRecord>[2]) =>
      client.createRecord({ parent: patient.patient, record, requestId: randomUUID() });
    expect(await violations(create(note("x".repeat(4001))))).toContain("record.patient_note.text");
    expect(
      await violations(
        records(t, asha).createRecord({
          parent: patient.patient,
          record: {
            details: {
              case: "prescription",
              value: { medication: { display: "A" }, frequency: "daily", startDate: { year: 2026, month: 2, day: 30 } },
            },
          },
          requestId: randomUUID(),
        }),
      ),
    ).toContain("record.prescription.start_date");
    expect(
      await violations(create({ ...note("later"), effectiveTime: timestampFromMs(Date.now() + 86_400_000) })),
    ).toEqual(expect.arrayContaining([expect.stringContaining("effective_time")]));
    expect(await violations(create({}))).toEqual(expect.arrayContaining([expect.stringContaining("record")]));
    expect(await violations(client.listRecords({ parent: patient.patient, kinds: [42 as RecordKind] }))).toEqual(
      expect.arrayContaining([expect.stringContaining("kinds")]),
    );
    expect(await violations(client.listRecords({ parent: patient.patient, pageToken: "garbage" }))).toContain(
      "page_token",
    );
    expect(
      await violations(create({ ...note("linked"), relatedRecords: [`${other.patient}/records/${randomUUID()}`] })),
    ).toContain("record.related_records");
    expect(
      await violations(
        records(t, asha).createRecord({
          parent: patient.patient,
          record: { ...prescription("A"), consultation: `${patient.patient}/consultations/${randomUUID()}` },
          requestId: randomUUID(),
        }),
      ),
    ).toContain("record.consultation");
    expect(
      await violations(
        records(t, asha).createRecord({
          parent: patient.patient,
          record: { details: { case: "consultationSummary", value: { chiefComplaint: "x" } } },
          requestId: randomUUID(),
        }),
      ),
    ).toContain("record.consultation_summary");
  });
});

describe("new records' ids", () => {
  /** The milliseconds a UUIDv7 carries (its first 48 bits). */
  const msOf = (name: string) => Number.parseInt((name.split("/").at(-1) ?? "").replaceAll("-", "").slice(0, 12), 16);

  it("carry the time of their creation after the clock moved on, not that of keys made ahead", async () => {
    const client = records(t, admin);
    const create = async () =>
      (await client.createRecord({ parent: patient.patient, record: allergy("Pollen"), requestId: randomUUID() }))
        .record;
    // The first create leaves keys made ahead for the next ones.
    await create();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Later than any time this file's clock has shown (ids never go back in time).
    clock.travelTo(new Date(Date.now() + 3 * 86_400_000));
    try {
      const record = await create();
      const created = Number(record?.createTime?.seconds ?? 0n) * 1000 + (record?.createTime?.nanos ?? 0) / 1e6;
      expect(Math.abs(msOf(record?.name ?? "") - created)).toBeLessThan(1000);
    } finally {
      clock.reset();
    }
  });
});
