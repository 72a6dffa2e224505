import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fromJson } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Assignment_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import { Payment_State, ReceiptFormat } from "../../gen/telemed/patient/v1/billing_pb.js";
import { PlatformFeedback_Category } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { Emergency_State } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { InsightService } from "../../gen/telemed/patient/v1/insight_service_pb.js";
import { PatientSchema } from "../../gen/telemed/patient/v1/patient_pb.js";
import { PatientService } from "../../gen/telemed/patient/v1/patient_service_pb.js";
import { TestResult_Interpretation } from "../../gen/telemed/patient/v1/record_pb.js";
import { ClientRecordChange_Operation as Operation } from "../../gen/telemed/patient/v1/record_sync_pb.js";
import { billing, billingTestEnv, invoiceOf, provider } from "../billing/billing-fixtures.ts";
import { bookFirstFree, consultations, ShiftedClock } from "../consultations/consultation-fixtures.ts";
import {
  assignmentOf,
  emergencyClient,
  emergencyRequest,
  eventually,
  paramedicOf,
} from "../emergencies/emergency-fixtures.ts";
import { addRecord, daysAgo, note, records, recordTestEnv } from "../records/record-fixtures.ts";
import {
  authClient,
  signUpPatient,
  staffSession,
  type TestSession,
  testPassword,
  verificationCode,
} from "../support/auth-fixtures.ts";
import { newPatientJson } from "../support/patient-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import {
  type Canary,
  findIn,
  type Leak,
  report,
  type Searched,
  searchFiles,
  searchLogs,
  searchPgDump,
  searchRedis,
} from "./plaintext-search.ts";
import { freePort } from "../support/free-port.ts";

/**
 * Issue #6, "Encryption (safety 2)", and billing (issue #7): canary values written
 * through the public API into every place PHI, contact or payment data goes must not be found in clear in `pg_dump`,
 * the JetStream store and NATS traffic, Redis, the service's logs or its DATA_DIR.
 *
 * Names stay in clear by design (search); they serve as the positive control that
 * the search does find what is stored in clear.
 */

const token = () => `cnry${randomBytes(8).toString("hex")}`;
const phone = () => `+9197${randomInt(10_000_000, 99_999_999)}`;
const canaries: Canary[] = [];
/** A canary for `label`: the value written (a phone with its `+`), remembered with what is searched for. */
function canary(label: string, value: string = token()): string {
  canaries.push({ label, needle: value.replace(/^\+/, "").replace(/@.*$/, "") });
  return value;
}

const clock = new ShiftedClock();
const logs: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
const wire: Array<{ subject: string; text: string }> = [];
const redisChannels: Array<{ channel: string; text: string }> = [];
let t: TestApp;
let natsStore: string;
let redisPrefix: string;
let leaks: Leak[] = [];
const searched: Searched[] = [];
/** The positive controls: each must be found where it was put. */
const controls = { name: token(), redis: token(), nats: token(), log: token() };
let emergencyName = "";
/** The insurance and UPI id the invoice and payments showed through the API (opened), to compare with the canaries. */
let billed: { policyNumber: string; memberId: string; upiIds: string[]; receipts: number } | undefined;
/** What the emergency was raised with, and what the Paramedic simulator opened from the lane. */
let reported: { description: string; callbackPhone: string; landmark: string } | undefined;
let dispatched: { description: string; callbackPhone: string; landmark: string } | undefined;

beforeAll(async () => {
  const port = await freePort();
  natsStore = await mkdtemp(join(tmpdir(), "canary-nats-"));
  cleanups.push(() => rm(natsStore, { recursive: true, force: true }));
  const nats = await startNats(port, natsStore);
  cleanups.push(async () => nats.kill("SIGKILL"));
  const natsUrl = `nats://127.0.0.1:${port}`;
  const tap = await connect({ servers: natsUrl });
  cleanups.push(() => tap.close());
  tap.subscribe(">", {
    callback: (_, msg) => {
      const headers = msg.headers ? [...msg.headers.keys()].map((k) => `${k}:${msg.headers?.get(k)}`).join("\n") : "";
      wire.push({ subject: msg.subject, text: `${headers}\n${Buffer.from(msg.data).toString("latin1")}` });
    },
  });
  redisPrefix = `patient-test:${randomUUID()}:`;
  const listener = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
  cleanups.push(async () => listener.disconnect());
  await listener.psubscribe(`${redisPrefix}*`);
  listener.on("pmessageBuffer", (_pattern: Buffer, channel: Buffer, message: Buffer) => {
    redisChannels.push({ channel: channel.toString(), text: message.toString("latin1") });
  });

  const sink = new PassThrough();
  sink.on("data", (chunk: Buffer) => logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
  t = await startTestApp(
    {
      ...recordTestEnv,
      ...billingTestEnv,
      NATS_URL: natsUrl,
      LOG_LEVEL: "debug",
      EMERGENCY_RELAY_INTERVAL_MS: "50",
    },
    { logs: sink, clock, redisKeyPrefix: redisPrefix },
  );
  cleanups.push(() => t.close());

  await writeCanaries();
  await collectLeaks();
}, 240_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Everything a patient, a doctor, an admin and the paramedics put where PHI or contact data goes. */
async function writeCanaries(): Promise<void> {
  const [patient, asha, admin] = await Promise.all([
    signUpPatient(t, { patient: { legalName: { givenName: "Canary", familyName: controls.name } } }),
    staffSession(t, "doctor", { doctorId: "asha-rao" }),
    staffSession(t, "admin"),
  ]);
  await contactDetails(admin);

  // Consultation: the reason, then the doctor's summary (with a follow-up: a health insight).
  const booked = await bookFirstFree(consultations(t, patient), patient.patient, clock, {
    reason: canary("consultation.reason"),
  });
  const name = booked.consultation.name;
  clock.travelTo(new Date(booked.startMs - 5 * 60_000));
  await consultations(t, asha).startConsultation({ name });
  const followUp = new Date(booked.startMs + 3 * 86_400_000);
  await consultations(t, asha).completeConsultation({
    name,
    summary: {
      chiefComplaint: canary("summary.chief_complaint"),
      assessment: canary("summary.assessment"),
      plan: canary("summary.plan"),
      followUpDate: { year: followUp.getUTCFullYear(), month: followUp.getUTCMonth() + 1, day: followUp.getUTCDate() },
      followUpInstructions: canary("summary.follow_up_instructions"),
    },
  });
  clock.reset();
  await consultations(t, patient).createConsultationFeedback({
    parent: name,
    feedback: { rating: 4, comment: canary("feedback.comment") },
  });
  await consultations(t, patient).createPlatformFeedback({
    parent: patient.patient,
    platformFeedback: {
      category: PlatformFeedback_Category.USABILITY,
      rating: 3,
      comment: canary("platform_feedback.comment"),
    },
    requestId: randomUUID(),
  });
  // A second booking, cancelled with a reason (the status cache in Redis holds the row).
  const later = await bookFirstFree(consultations(t, patient), patient.patient, clock, { fromMs: 3 * 3_600_000 });
  await consultations(t, patient).getConsultation({ name: later.consultation.name });
  await consultations(t, patient).cancelConsultation({
    name: later.consultation.name,
    reason: canary("consultation.cancel_reason"),
  });
  await consultations(t, patient).getConsultation({ name: later.consultation.name });

  await medicalRecords(patient, asha);
  await emergency(patient);
  await payments(admin);
}

/** Contact details: a sign-up, a log-in and a reset by email, and an admin's update. */
async function contactDetails(admin: TestSession): Promise<void> {
  const email = canary("contact.email", `${token()}@example.com`);
  const anonymous = authClient(t);
  const signedUp = await anonymous.signUp({
    patient: fromJson(
      PatientSchema,
      newPatientJson({
        contact: {
          email,
          phone: canary("contact.phone", phone()),
          address: { lines: [canary("contact.address.line")], locality: "Bengaluru", postalCode: "560001" },
        },
        upiId: canary("upi_id", `${token()}@okaxis`),
        insurance: { provider: "Star Health", policyNumber: canary("insurance.policy_number") },
        emergencyContacts: [
          {
            displayName: canary("emergency_contact.name"),
            relationship: "sister",
            phone: canary("emergency_contact.phone", phone()),
          },
        ],
      }) as never,
    ),
    password: testPassword,
    requestId: randomUUID(),
    acceptedTermsVersion: "2026-11",
  });
  await anonymous.verifyEmail({ token: await verificationCode(t, email) });
  await anonymous.logIn({ email, password: testPassword });
  await anonymous.logIn({ email, password: "wrong-password-for-the-limiter" }).catch(() => undefined);
  await anonymous.requestPasswordReset({ email });
  const patients = createClient(
    PatientService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [admin.interceptor] }),
  );
  const current = await patients.getPatient({ name: signedUp.patient });
  await patients.updatePatient({
    patient: {
      name: signedUp.patient,
      contact: { phone: canary("contact.phone.updated", phone()) },
      etag: current.patient?.etag ?? "",
    },
    updateMask: { paths: ["contact.phone"] },
  });
}

/** Records by the doctor and the patient, an upload from the phone, insights and the offline bundle. */
async function medicalRecords(patient: TestSession, asha: TestSession): Promise<void> {
  const byDoctor = records(t, asha);
  await addRecord(byDoctor, patient.patient, {
    effectiveTime: daysAgo(1),
    details: {
      case: "prescription",
      value: {
        medication: { display: canary("prescription.medication") },
        dose: { value: "500", unit: "mg" },
        frequency: canary("prescription.frequency"),
        durationDays: 5,
      },
    },
  });
  await addRecord(byDoctor, patient.patient, {
    effectiveTime: daysAgo(2),
    details: {
      case: "testResult",
      value: {
        test: { display: "HbA1c" },
        value: { case: "text", value: canary("test_result.value") },
        interpretation: TestResult_Interpretation.ABNORMAL,
        reportText: canary("test_result.report_text"),
      },
    },
  });
  await addRecord(byDoctor, patient.patient, {
    effectiveTime: daysAgo(3),
    details: { case: "allergy", value: { substance: { display: canary("allergy.substance") }, active: true } },
  });
  const mine = records(t, patient);
  const diary = await addRecord(mine, patient.patient, note(canary("patient_note.text")));
  await mine.deleteRecord({ name: diary.name, etag: diary.etag, reason: canary("record.delete_reason") });
  await mine.pushRecordChanges({
    parent: patient.patient,
    changes: [{ clientId: randomUUID(), operation: Operation.CREATE, record: note(canary("sync.uploaded_note")) }],
  });
  await mine.pullRecordChanges({ parent: patient.patient });
  await mine.listRecords({ parent: patient.patient });
  await mine.getOfflineBundle({ name: `${patient.patient}/offlineBundle` });
  const insights = createClient(
    InsightService,
    createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1", interceptors: [patient.interceptor] }),
  );
  await insights.listInsights({ parent: patient.patient });
}

/** An emergency through the lane to the Paramedic simulator and back, then cancelled with a reason. */
async function emergency(patient: TestSession): Promise<void> {
  const client = emergencyClient(t, patient.interceptor);
  reported = {
    description: canary("emergency.description"),
    callbackPhone: canary("emergency.callback_phone", phone()),
    landmark: canary("emergency.landmark"),
  };
  const { emergency: created } = await client.createEmergency(
    emergencyRequest(patient.patient, {
      description: reported.description,
      location: {
        latLng: { latitude: 12.9716, longitude: 77.5946 },
        accuracyMeters: 10,
        address: { lines: [canary("emergency.address.line")], locality: "Bengaluru" },
        landmark: reported.landmark,
      },
      callbackPhone: reported.callbackPhone,
    }),
  );
  emergencyName = created?.name ?? "";
  await eventually(async () => {
    const read = await client.getEmergency({ name: emergencyName });
    return read.emergency?.state === Emergency_State.DISPATCHED ? true : undefined;
  }, 15_000);
  const details = paramedicOf(t).details(assignmentOf(created));
  dispatched = details && {
    description: details.description,
    callbackPhone: details.callbackPhone,
    landmark: details.location?.landmark ?? "",
  };
  paramedicOf(t).advance(assignmentOf(created), Assignment_State.EN_ROUTE);
  await eventually(async () => {
    const read = await client.getEmergency({ name: emergencyName });
    return read.emergency?.state === Emergency_State.EN_ROUTE ? true : undefined;
  }, 15_000);
  await client.cancelEmergency({ name: emergencyName, reason: canary("emergency.cancel_reason") });
  await eventually(async () => {
    const read = await client.getEmergency({ name: emergencyName });
    return read.emergency?.state === Emergency_State.CANCELLED ? true : undefined;
  }, 15_000);
  await client.listEmergencies({ parent: patient.patient });
}

/**
 * Billing: a patient insured under a canary policy and member id, with a canary UPI id
 * on the profile, is charged (as an admin), invoiced (the invoice keeps a copy of the
 * insurance), pays part with the profile's UPI id and the rest with another canary UPI
 * id in the request; the UPI provider simulator approves both and calls back (and is
 * polled), receipts are downloaded, an admin refunds part: BILLING notifications for
 * each. The simulator is "the provider" and may hold the UPI ids; our stores may not.
 */
async function payments(admin: TestSession): Promise<void> {
  const policyNumber = canary("billing.insurance.policy_number");
  const memberId = canary("billing.insurance.member_id");
  const profileUpi = canary("billing.profile.upi_id", `${token()}@okaxis`);
  const requestUpi = canary("billing.payment.upi_id", `${token()}@oksbi`);
  const payer = await signUpPatient(t, {
    patient: { upiId: profileUpi, insurance: { provider: "Star Health", policyNumber, memberId } },
  });
  const invoice = await invoiceOf(t, admin, payer, [100_000n]); // patient total ₹236.00
  const client = billing(t, payer);
  const first = (
    await client.createPayment({
      parent: payer.patient,
      payment: { invoice: invoice.name, amount: { amountMinor: 10_000n, currencyCode: "INR" } },
      requestId: randomUUID(),
    })
  ).payment;
  await provider(t).tick(); // approved and settled: callbacks to the webhook
  const second = (
    await client.createPayment({
      parent: payer.patient,
      payment: { invoice: invoice.name, upiId: requestUpi },
      requestId: randomUUID(),
    })
  ).payment;
  await client.getPayment({ name: second?.name ?? "" }); // polled at the provider
  await provider(t).tick();
  const names = [first?.name ?? "", second?.name ?? ""];
  const settled = await Promise.all(names.map(async (name) => (await client.getPayment({ name })).payment));
  if (settled.some((payment) => payment?.state !== Payment_State.SUCCEEDED)) throw new Error("payments not settled");
  let receipts = 0;
  for (const name of names) {
    for (const format of [ReceiptFormat.HTML, ReceiptFormat.PDF]) {
      const { receipt } = await client.getPaymentReceipt({ name: `${name}/receipt`, format });
      receipts += receipt?.content.length ? 1 : 0;
    }
  }
  await billing(t, admin).refundPayment({
    name: second?.name ?? "",
    amount: { amountMinor: 5_000n, currencyCode: "INR" },
    reason: "Goodwill",
    requestId: randomUUID(),
  });
  await provider(t).tick(); // the refund's callback
  await client.listPayments({ parent: payer.patient });
  const { invoice: read } = await client.getInvoice({ name: invoice.name });
  await client.listInvoices({ parent: payer.patient });
  billed = {
    policyNumber: read?.insurance?.policyNumber ?? "",
    memberId: read?.insurance?.memberId ?? "",
    upiIds: settled.map((payment) => payment?.upiId ?? ""),
    receipts,
  };
  if (billed.policyNumber !== policyNumber || billed.memberId !== memberId) throw new Error("insurance not shown");
  if (billed.upiIds.join() !== [profileUpi, requestUpi].join()) throw new Error("UPI ids not shown");
}

/** Searches every place, once everything was written and every message delivered. */
async function collectLeaks(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 500)); // deliveries, fan-out, cache refreshes
  const all = [...canaries, ...Object.entries(controls).map(([k, v]) => ({ label: `control.${k}`, needle: v }))];

  const pgDump = await searchPgDump(t.database.url, all);
  const nc = await connect({ servers: wireUrl() });
  const stream = await searchStreams(nc, all);
  const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
  try {
    await redis.set(`${redisPrefix}canary-control`, controls.redis, "PX", 60_000);
    const store = await searchFiles(natsStore, all, "nats-store");
    const keys = await searchRedis(redis, redisPrefix, all);
    logs.push(JSON.stringify({ level: 30, msg: "canary control", value: controls.log }));
    const log = searchLogs(logs, all);
    const dataDir = await searchFiles(t.dataDir, all, "data-dir");
    const wireLeaks = wire.flatMap((m) => findIn(`${m.subject}\n${m.text}`, all, "nats-wire", m.subject));
    const channelLeaks = redisChannels.flatMap((m) => findIn(m.text, all, "redis-channel", m.channel));
    for (const part of [pgDump, stream, store, keys, log, dataDir]) {
      leaks.push(...part.leaks);
      searched.push(part.searched);
    }
    leaks.push(...wireLeaks, ...channelLeaks);
    searched.push(
      {
        place: "nats-wire (every message on the server)",
        items: wire.length,
        bytes: sum(wire.map((m) => m.text.length)),
      },
      {
        place: "redis pub/sub channels",
        items: redisChannels.length,
        bytes: sum(redisChannels.map((m) => m.text.length)),
      },
    );
  } finally {
    redis.disconnect();
    await nc.close();
  }
  leaks = [...new Map(leaks.map((l) => [`${l.canary}|${l.place}|${l.where}|${l.encoding}`, l])).values()];
  console.log(report(all, leaks, searched));
}

let wireAddress = "";
function wireUrl(): string {
  return wireAddress;
}

/** Every message of every stream, read back through the JetStream API; a control message first. */
async function searchStreams(
  nc: NatsConnection,
  all: readonly Canary[],
): Promise<{ leaks: Leak[]; searched: Searched }> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "CANARY_CONTROL", subjects: ["canary.control"] });
  const js = jsm.jetstream();
  await js.publish("canary.control", Buffer.from(controls.nats));
  const found: Leak[] = [];
  let messages = 0;
  let bytes = 0;
  for await (const info of jsm.streams.list()) {
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq += 1) {
      const message = await jsm.streams.getMessage(info.config.name, { seq }).catch(() => null);
      if (!message) continue;
      messages += 1;
      bytes += message.data.length;
      const text = `${message.subject}\n${Buffer.from(message.data).toString("latin1")}\n${JSON.stringify(message.header ?? {})}`;
      found.push(...findIn(text, all, "nats-stream", `${info.config.name}/${message.subject}`));
    }
  }
  return { leaks: found, searched: { place: "nats-stream (messages read back)", items: messages, bytes } };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe("issue #6, encryption (safety 2): canary values are nowhere in clear", () => {
  it("the search finds what is stored in clear on purpose (names, and a control in each place)", () => {
    const where = (label: string) => leaks.filter((l) => l.canary === label).map((l) => `${l.place}:${l.where}`);
    expect(where("control.name")).toEqual(expect.arrayContaining(["postgres:patients.family_name"]));
    expect(where("control.redis")).toEqual(["redis:canary-control"]);
    expect(where("control.nats").some((w) => w.startsWith("nats-stream:CANARY_CONTROL"))).toBe(true);
    expect(where("control.nats").some((w) => w.startsWith("nats-store:"))).toBe(true);
    expect(where("control.log")).toHaveLength(1);
    expect(searched.every((s) => s.items > 0)).toBe(true);
    expect(canaries.length).toBeGreaterThan(25);
  });

  it("billing still shows the invoice's insurance and the payments' UPI ids through the API, and renders receipts", () => {
    expect(billed).toMatchObject({ receipts: 4 });
  });

  it("the paramedics still get the description, location and callback phone: sealed to their key on the lane", () => {
    expect(dispatched).toEqual(reported);
  });

  for (const place of [
    "postgres",
    "nats-store",
    "nats-stream",
    "nats-wire",
    "redis",
    "redis-channel",
    "log",
    "data-dir",
  ]) {
    it(`no canary in clear in ${place}`, () => {
      const found = leaks.filter((l) => l.place === place && !l.canary.startsWith("control."));
      expect(found.map((l) => `${l.canary} in ${l.where} (${l.encoding})`)).toEqual([]);
    });
  }
});

/** A nats-server of this test's own, JetStream in `store`, so its files can be searched. */
async function startNats(port: number, store: string): Promise<ChildProcess> {
  const child = spawn(
    process.env.NATS_SERVER ?? "nats-server",
    ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store],
    {
      stdio: "ignore",
    },
  );
  wireAddress = `nats://127.0.0.1:${port}`;
  await eventually(async () => {
    const nc = await connect({ servers: wireAddress, timeout: 500 }).catch(() => undefined);
    if (nc === undefined) return undefined;
    await nc.close();
    return true;
  }, 10_000);
  return child;
}
