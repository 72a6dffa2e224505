import { randomUUID } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/telemed/patient/v1/audit_pb.js";
import { AuditService } from "../../gen/telemed/patient/v1/audit_service_pb.js";
import { ActorRole } from "../../gen/telemed/patient/v1/common_pb.js";
import { FamilyGrant } from "../../gen/telemed/patient/v1/family_pb.js";
import { Insight_Kind, Insight_State, Insight_SuggestedAction } from "../../gen/telemed/patient/v1/insight_pb.js";
import { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { NotificationCategory } from "../../gen/telemed/patient/v1/notification_pb.js";
import { TestResult_Interpretation } from "../../gen/telemed/patient/v1/record_pb.js";
import { addDays, civilDateOf } from "../../src/insights/insight-rules.ts";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import { notificationClient } from "../notifications/notification-fixtures.ts";
import { addRecord, daysAgo, recordTestEnv, records, testResult } from "../records/record-fixtures.ts";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { guardianOf } from "../support/guardian-fixtures.ts";

// One app whose clock the test moves; the periodic scan is off (INSIGHT_SCAN_INTERVAL_MS=0),
// so insights appear when the test scans (`scanInsights`, what the timer runs) or lists.
let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let asha: TestSession;
let admin: TestSession;
/** Guardians of the patient, with and without the VIEW_RECORDS grant (signed up before the clock moves). */
let withGrant: TestSession;
let withoutGrant: TestSession;
let summaryRecord: string;
/** Where the test moves the clock: two days before the follow-up date. */
let later: Date;
const day = 86_400_000;

beforeAll(async () => {
  t = await startTestApp({ ...recordTestEnv, INSIGHT_SCAN_INTERVAL_MS: "0", INSIGHT_HORIZON_DAYS: "7" }, { clock });
  [patient, other, asha, admin] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
    staffSession(t, "admin"),
  ]);
  withGrant = await guardianOf(t, patient, [FamilyGrant.VIEW_RECORDS]);
  withoutGrant = await guardianOf(t, patient, [FamilyGrant.BOOK_CONSULTATIONS]);
  // Dr. Asha Rao sees the patient and asks to see them again ten days later.
  const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock);
  clock.travelTo(new Date(booked.startMs - 5 * 60_000));
  await consultations(t, asha).startConsultation({ name: booked.consultation.name });
  const completed = await consultations(t, asha).completeConsultation({
    name: booked.consultation.name,
    summary: { chiefComplaint: "Sore throat", followUpDate: addDays(civilDateOf(new Date(booked.startMs)), 10) },
  });
  summaryRecord = completed.consultation?.summaryRecord ?? "";
  later = new Date(booked.startMs + 8 * day);
}, 120_000);
afterAll(async () => {
  clock.reset();
  await t?.close();
});

function insights(session: TestSession) {
  return createClient(
    InsightService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [session.interceptor] }),
  );
}

async function healthAlerts(session: TestSession) {
  const { notifications } = await notificationClient(t, session.interceptor).listNotifications({
    parent: session.patient,
    categories: [NotificationCategory.HEALTH_ALERTS],
    pageSize: 100,
  });
  return notifications;
}

let rx: string;
let lab: string;

describe("health insights: derived, explainable reminders from a patient's records", () => {
  it("raises a follow-up due, a prescription ending and an abnormal result, each naming its record, notified once", async () => {
    const doctor = records(t, asha);
    const today = civilDateOf(later);
    rx = (
      await addRecord(doctor, patient.patient, {
        effectiveTime: daysAgo(1),
        details: {
          case: "prescription",
          value: {
            medication: { display: "Amoxicillin" },
            frequency: "twice daily",
            startDate: addDays(today, -2),
            durationDays: 6,
            prescriber: "doctors/asha-rao",
          },
        },
      })
    ).name;
    const abnormal = testResult("Potassium", 1);
    if (abnormal.details?.case === "testResult") {
      abnormal.details.value.interpretation = TestResult_Interpretation.ABNORMAL;
      abnormal.details.value.orderedBy = "doctors/vikram-iyer";
    }
    lab = (await addRecord(doctor, patient.patient, abnormal)).name;
    // A normal result raises nothing.
    await addRecord(doctor, patient.patient, testResult("Glucose", 1));

    clock.travelTo(later);
    // The periodic scan (twice, as two replicas or two rounds would) stores and notifies each insight once.
    await t.app.scanInsights();
    await t.app.scanInsights();
    const alerts = await healthAlerts(patient);
    expect(alerts).toHaveLength(3);

    const listed = (await insights(patient).listInsights({ parent: patient.patient })).insights;
    expect(listed.map((i) => i.kind)).toEqual([
      Insight_Kind.ABNORMAL_RESULT_WITHOUT_FOLLOW_UP,
      Insight_Kind.FOLLOW_UP_DUE,
      Insight_Kind.PRESCRIPTION_ENDING,
    ]);
    const [result, followUp, ending] = listed;
    expect(followUp).toMatchObject({
      state: Insight_State.ACTIVE,
      title: "Follow-up due",
      sourceRecord: summaryRecord,
      ruleId: "follow_up_due.v1",
      dueDate: addDays(today, 2),
      suggestedAction: Insight_SuggestedAction.BOOK_CONSULTATION,
      actionResource: "doctors/asha-rao",
    });
    expect(followUp?.explanation).toMatch(/^Dr\. Asha Rao asked to see you again by .+ \(consultation of .+\)/);
    expect(ending).toMatchObject({
      sourceRecord: rx,
      ruleId: "prescription_ending.v1",
      dueDate: addDays(today, 3),
      suggestedAction: Insight_SuggestedAction.RENEW_PRESCRIPTION,
      actionResource: "doctors/asha-rao",
    });
    expect(ending?.explanation).toMatch(/Amoxicillin .* in 3 days\.$/);
    expect(result).toMatchObject({
      sourceRecord: lab,
      ruleId: "abnormal_result_without_follow_up.v1",
      actionResource: "doctors/vikram-iyer",
    });
    expect(result?.explanation).toMatch(/^Potassium of .+ was marked abnormal/);
    // Each notification is about one insight, and carries no clinical detail.
    expect(alerts.map((n) => n.subjectResource).sort()).toEqual(listed.map((i) => i.name).sort());
    expect(alerts.every((n) => !/Amoxicillin|Potassium|Rao/.test(`${n.title} ${n.body}`))).toBe(true);

    // Listing derives again: the same insights, no new notification.
    const again = (await insights(patient).listInsights({ parent: patient.patient })).insights;
    expect(again.map((i) => i.name)).toEqual(listed.map((i) => i.name));
    expect(await healthAlerts(patient)).toHaveLength(3);
    const got = await insights(patient).getInsight({ name: followUp?.name ?? "" });
    expect(got.insight).toEqual(followUp);
    const events = (
      await createClient(
        AuditService,
        createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
      ).listAccessEvents({ parent: patient.patient, pageSize: 100, includeOwn: true })
    ).accessEvents;
    expect(events.some((e) => e.resource === followUp?.name && e.action === AuditAction.READ)).toBe(true);
  });

  it("resolves the follow-up insight once a follow-up is booked, and keeps a dismissed one dismissed", async () => {
    const client = insights(patient);
    await bookFirstFree(consultations(t, patient), patient.patient, clock);
    const active = (await client.listInsights({ parent: patient.patient })).insights;
    expect(active.map((i) => i.kind)).toEqual([
      Insight_Kind.ABNORMAL_RESULT_WITHOUT_FOLLOW_UP,
      Insight_Kind.PRESCRIPTION_ENDING,
    ]);
    const resolved = (await client.listInsights({ parent: patient.patient, states: [Insight_State.RESOLVED] }))
      .insights;
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ kind: Insight_Kind.FOLLOW_UP_DUE, state: Insight_State.RESOLVED });
    expect(resolved[0]?.closeTime).toBeDefined();

    const ending = active.find((i) => i.kind === Insight_Kind.PRESCRIPTION_ENDING);
    const name = ending?.name ?? "";
    expect((await refusal(client.dismissInsight({ name, etag: "v99" }))).code).toBe(Code.Aborted);
    const { insight: dismissed } = await client.dismissInsight({ name, etag: ending?.etag ?? "" });
    expect(dismissed).toMatchObject({ name, state: Insight_State.DISMISSED });
    expect(dismissed?.etag).not.toBe(ending?.etag);
    await t.app.scanInsights();
    const remaining = (await client.listInsights({ parent: patient.patient })).insights;
    expect(remaining.map((i) => i.sourceRecord)).toEqual([lab]);
    const hidden = (await client.listInsights({ parent: patient.patient, states: [Insight_State.DISMISSED] })).insights;
    expect(hidden.map((i) => i.name)).toEqual([name]);
    expect(await refusal(client.dismissInsight({ name }))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "INVALID_STATE_TRANSITION",
    });
    // Nothing new to tell the patient.
    expect(await healthAlerts(patient)).toHaveLength(3);
  });

  it("pages through every state, earliest due date first", async () => {
    const states = [Insight_State.ACTIVE, Insight_State.DISMISSED, Insight_State.RESOLVED];
    const all = (await insights(patient).listInsights({ parent: patient.patient, states })).insights;
    expect(all).toHaveLength(3);
    const paged: string[] = [];
    let pageToken = "";
    do {
      const page = await insights(patient).listInsights({ parent: patient.patient, states, pageSize: 1, pageToken });
      paged.push(...page.insights.map((i) => i.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(paged).toEqual(all.map((i) => i.name));
    // The REST route (google.api.http) serves the same list.
    const rest = await fetch(`${t.baseUrl}/${patient.patient}/insights?pageSize=1`, { headers: patient.headers });
    expect(rest.status).toBe(200);
    const restPage = (await rest.json()) as { insights: { name: string }[] };
    expect(restPage.insights.map((i) => i.name)).toHaveLength(1);
  });
});

describe("who may see insights", () => {
  it("answers NOT_FOUND for another patient's insights", async () => {
    const [theirs] = (await insights(patient).listInsights({ parent: patient.patient })).insights;
    const name = theirs?.name ?? "";
    expect((await refusal(insights(other).listInsights({ parent: patient.patient }))).code).toBe(Code.NotFound);
    expect((await refusal(insights(other).getInsight({ name }))).code).toBe(Code.NotFound);
    expect((await refusal(insights(other).dismissInsight({ name }))).code).toBe(Code.NotFound);
    // The same insight id under the caller's own name is not theirs either.
    const own = `${other.patient}/insights/${name.split("/").at(-1)}`;
    expect(await refusal(insights(other).getInsight({ name: own }))).toMatchObject({
      code: Code.NotFound,
      reason: "INSIGHT_NOT_FOUND",
    });
    expect((await insights(other).listInsights({ parent: other.patient })).insights).toEqual([]);
  });

  it("lets a guardian with the view grant and an admin read them, not a guardian without it or a doctor", async () => {
    const seen = (await insights(withGrant).listInsights({ parent: patient.patient })).insights;
    expect(seen.map((i) => i.sourceRecord)).toEqual([lab]);
    expect((await insights(admin).listInsights({ parent: patient.patient })).insights).toHaveLength(1);
    expect((await refusal(insights(withoutGrant).listInsights({ parent: patient.patient }))).code).toBe(Code.NotFound);
    expect((await refusal(insights(withoutGrant).getInsight({ name: seen[0]?.name ?? "" }))).code).toBe(Code.NotFound);
    expect((await refusal(insights(asha).listInsights({ parent: patient.patient }))).code).toBe(Code.PermissionDenied);
    const events = (
      await createClient(
        AuditService,
        createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
      ).listAccessEvents({ parent: patient.patient, pageSize: 100 })
    ).accessEvents;
    expect(events.some((e) => e.proxy && e.actor?.role === ActorRole.GUARDIAN && e.action === AuditAction.READ)).toBe(
      true,
    );
  });
});

describe("bad inputs", () => {
  it("answers INVALID_ARGUMENT for malformed names, filters, sizes and page tokens", async () => {
    const client = insights(patient);
    const invalid = async (call: Promise<unknown>) => expect((await refusal(call)).code).toBe(Code.InvalidArgument);
    await invalid(client.listInsights({ parent: patient.patient, pageSize: 101 }));
    await invalid(client.listInsights({ parent: patient.patient, states: [Insight_State.UNSPECIFIED] }));
    await invalid(client.listInsights({ parent: patient.patient, pageToken: "not-a-token" }));
    await invalid(client.getInsight({ name: `${patient.patient}/insights/a/b` }));
    await invalid(client.dismissInsight({ name: `${patient.patient}/insights/!` }));
    await invalid(client.dismissInsight({ name: `${patient.patient}/insights/x`, etag: "e".repeat(129) }));
    // Well formed but no such insight.
    expect((await refusal(client.getInsight({ name: `${patient.patient}/insights/${randomUUID()}` }))).code).toBe(
      Code.NotFound,
    );
  });
});
