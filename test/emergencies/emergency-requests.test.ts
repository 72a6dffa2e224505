import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Assignment_State } from "../../gen/telemed/paramedic/v1/paramedic_pb.js";
import { Emergency_State, EmergencyPriority, EmergencySeverity } from "../../gen/telemed/patient/v1/emergency_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import {
  assignmentOf,
  emergencyClient,
  emergencyRequest,
  eventually,
  freeUnits,
  paramedicOf,
  stateName,
} from "./emergency-fixtures.ts";

let t: TestApp;
let patient: TestSession;

beforeAll(async () => {
  t = await startTestApp({ EMERGENCY_MERGE_WINDOW_SECONDS: "600" });
  patient = await signUpPatient(t);
}, 60_000);
afterAll(async () => {
  await t?.close();
});

async function refusal(call: Promise<unknown>) {
  const error = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  if (error === undefined) throw new Error("the call succeeded");
  return {
    code: Code[error.code],
    reason: error.findDetails(ErrorInfoSchema)[0]?.reason,
    fields: error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field) ?? [],
  };
}

describe("TST-PT005-1 a patient creates an emergency request: it is logged and dispatched", () => {
  it("answers once durable (DISPATCH_PENDING or later), then the lane dispatches it to a paramedic unit", async () => {
    const someone = await signUpPatient(t);
    const client = emergencyClient(t, someone.interceptor, "grpc");
    const { emergency, merged } = await client.createEmergency(emergencyRequest(someone.patient));
    expect(merged).toBe(false);
    expect(emergency?.name).toMatch(new RegExp(`^${someone.patient}/emergencies/[0-9a-f-]{36}$`));
    expect(emergency?.priority).toBe(EmergencyPriority.P1);
    expect(emergency?.timeline[0]?.state).toBe(Emergency_State.DISPATCH_PENDING);
    expect(emergency?.requestedBy?.principal).toBe(someone.patient);
    // The answer is the emergency as stored: what a read finds (sealed details opened), but for where it went since.
    const { emergency: stored } = await client.getEmergency({ name: emergency?.name ?? "" });
    const asCreated = (e: typeof emergency) => ({
      name: e?.name,
      kind: e?.kind,
      severity: e?.severity,
      priority: e?.priority,
      description: e?.description,
      location: e?.location,
      callbackPhone: e?.callbackPhone,
      requestedBy: e?.requestedBy,
      mergedRequestCount: e?.mergedRequestCount,
      createTime: e?.createTime,
      first: e?.timeline[0],
    });
    expect(asCreated(emergency)).toEqual(asCreated(stored));

    const dispatched = await eventually(async () => {
      const { emergency: now } = await client.getEmergency({ name: emergency?.name ?? "" });
      return now?.state === Emergency_State.DISPATCHED ? now : undefined;
    });
    // REQUESTED (the PubAck) is left out when the paramedics' DISPATCHED committed first: states only move forward.
    const states = dispatched.timeline.map((e) => stateName(e.state));
    expect([
      ["DISPATCH_PENDING", "REQUESTED", "DISPATCHED"],
      ["DISPATCH_PENDING", "DISPATCHED"],
    ]).toContainEqual(states);
    expect(dispatched.timeline.map((e) => e.sequence)).toEqual(states.map((_, i) => BigInt(i + 1)));
    expect(dispatched.assignment?.unit).toMatch(/^units\//);
    expect(dispatched.assignment?.callSign).not.toBe("");
    const assignment = paramedicOf(t).assignment(assignmentOf(emergency));
    expect(assignment.priority).toBe(1);
    expect(assignment.state).toBe(Assignment_State.DISPATCHED);
  });

  it("maps severity to priority: CRITICAL P1, SERIOUS P2, URGENT P3", async () => {
    for (const [severity, priority] of [
      [EmergencySeverity.SERIOUS, EmergencyPriority.P2],
      [EmergencySeverity.URGENT, EmergencyPriority.P3],
    ] as const) {
      const someone = await signUpPatient(t);
      const { emergency } = await emergencyClient(t, someone.interceptor).createEmergency(
        emergencyRequest(someone.patient, { severity }),
      );
      expect(emergency?.priority).toBe(priority);
      await eventually(() =>
        paramedicOf(t)
          .assignments()
          .find((a) => a.name === assignmentOf(emergency)),
      );
      expect(paramedicOf(t).assignment(assignmentOf(emergency)).priority).toBe(priority);
    }
  });

  it("three presses with one request id on a bad network, all at once, make one emergency", async () => {
    const someone = await signUpPatient(t);
    const client = emergencyClient(t, someone.interceptor);
    const request = emergencyRequest(someone.patient);
    const answers = await Promise.all([1, 2, 3].map(() => client.createEmergency(request)));
    expect(new Set(answers.map((a) => a.emergency?.name)).size).toBe(1);
    const again = await client.createEmergency(request);
    expect(again.emergency?.name).toBe(answers[0]?.emergency?.name);
    const { emergencies } = await client.listEmergencies({ parent: someone.patient });
    expect(emergencies).toHaveLength(1);
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .find((a) => a.name === assignmentOf(again.emergency)),
    );
    expect(
      paramedicOf(t)
        .assignments()
        .filter((a) => a.name === assignmentOf(again.emergency)),
    ).toHaveLength(1);
  });

  it("a repeat within the window is merged into the open emergency, never refused; a more severe one is not folded into a less severe one", async () => {
    const someone = await signUpPatient(t);
    const client = emergencyClient(t, someone.interceptor);
    const first = await client.createEmergency(
      emergencyRequest(someone.patient, { severity: EmergencySeverity.SERIOUS }),
    );
    const repeat = await client.createEmergency(
      emergencyRequest(someone.patient, { severity: EmergencySeverity.URGENT }),
    );
    expect(repeat.merged).toBe(true);
    expect(repeat.emergency?.name).toBe(first.emergency?.name);
    expect(repeat.emergency?.mergedRequestCount).toBe(1);
    // Retrying the merged request answers the same.
    const worse = await client.createEmergency(
      emergencyRequest(someone.patient, { severity: EmergencySeverity.CRITICAL }),
    );
    expect(worse.merged).toBe(false);
    expect(worse.emergency?.name).not.toBe(first.emergency?.name);
    expect(worse.emergency?.priority).toBe(EmergencyPriority.P1);
    const { emergencies } = await client.listEmergencies({ parent: someone.patient });
    expect(emergencies).toHaveLength(2);
  });

  it("bad inputs are INVALID_ARGUMENT with the offending fields", async () => {
    const client = emergencyClient(t, patient.interceptor);
    const cases: Array<[string, Parameters<typeof emergencyRequest>[1], string]> = [
      ["no location", { location: undefined }, "emergency.location"],
      ["0,0 is a missing fix", { location: { latLng: { latitude: 0, longitude: 0 } } }, "emergency.location.lat_lng"],
      ["latitude beyond 90", { location: { latLng: { latitude: 91, longitude: 10 } } }, "emergency.location.lat_lng"],
      ["neither coordinates nor address", { location: { landmark: "here" } }, "emergency.location"],
      ["an empty address", { location: { address: { region: "KA" } } }, "emergency.location.address"],
      ["unknown severity", { severity: 99 as EmergencySeverity }, "emergency.severity"],
      ["no severity", { severity: EmergencySeverity.UNSPECIFIED }, "emergency.severity"],
      ["a phone that is not E.164", { callbackPhone: "12345" }, "emergency.callback_phone"],
    ];
    for (const [label, overrides, field] of cases) {
      const refused = await refusal(client.createEmergency(emergencyRequest(patient.patient, overrides)));
      expect({ label, code: refused.code }).toEqual({ label, code: "InvalidArgument" });
      expect(
        refused.fields.some((f) => f.startsWith(field)),
        `${label}: ${refused.fields.join(",")}`,
      ).toBe(true);
    }
    const noRequestId = await refusal(client.createEmergency({ ...emergencyRequest(patient.patient), requestId: "" }));
    expect(noRequestId.code).toBe("InvalidArgument");
    const { emergencies } = await client.listEmergencies({ parent: patient.patient });
    expect(emergencies).toHaveLength(0);
  });
});

describe("reading, listing and cancelling", () => {
  it("another patient's emergency is NOT_FOUND, to read and to cancel", async () => {
    const owner = await signUpPatient(t);
    const { emergency } = await emergencyClient(t, owner.interceptor).createEmergency(emergencyRequest(owner.patient));
    const other = emergencyClient(t, patient.interceptor);
    expect((await refusal(other.getEmergency({ name: emergency?.name ?? "" }))).code).toBe("NotFound");
    expect((await refusal(other.cancelEmergency({ name: emergency?.name ?? "" }))).code).toBe("NotFound");
    // Their own parent with another's emergency id: still nothing.
    const forged = `${patient.patient}/emergencies/${emergency?.name.split("/").at(-1)}`;
    expect((await refusal(other.getEmergency({ name: forged }))).code).toBe("NotFound");
  });

  it("cancelling tells the paramedics; cancelling a cancelled or closed one is FAILED_PRECONDITION", {
    timeout: 20_000,
  }, async () => {
    const someone = await signUpPatient(t);
    const client = emergencyClient(t, someone.interceptor);
    const { emergency } = await client.createEmergency(emergencyRequest(someone.patient));
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .find((a) => a.name === assignmentOf(emergency)),
    );
    const { emergency: cancelled } = await client.cancelEmergency({
      name: emergency?.name ?? "",
      reason: "false alarm",
    });
    expect(cancelled?.state).toBe(Emergency_State.CANCELLED);
    expect(cancelled?.cancellation?.reason).toBe("false alarm");
    await eventually(() =>
      paramedicOf(t).assignment(assignmentOf(emergency)).state === Assignment_State.CANCELLED ? true : undefined,
    );
    expect((await refusal(client.cancelEmergency({ name: emergency?.name ?? "" }))).reason).toBe("EMERGENCY_ENDED");

    freeUnits(t);
    const second = await client.createEmergency(emergencyRequest(someone.patient));
    const name = assignmentOf(second.emergency);
    await eventually(() =>
      paramedicOf(t)
        .assignments()
        .some((a) => a.name === name)
        ? true
        : undefined,
    );
    for (const state of ["EN_ROUTE", "ON_SCENE", "TRANSPORTING", "AT_HOSPITAL", "CLOSED"]) {
      await eventually(() => (paramedicOf(t).assignment(name).state >= Assignment_State.DISPATCHED ? true : undefined));
      expect(Assignment_State[paramedicOf(t).advance(name).state]).toBe(state);
    }
    await eventually(async () => {
      const { emergency: now } = await client.getEmergency({ name: second.emergency?.name ?? "" });
      return now?.state === Emergency_State.CLOSED ? true : undefined;
    });
    const closed = await refusal(client.cancelEmergency({ name: second.emergency?.name ?? "" }));
    expect(closed).toMatchObject({ code: "FailedPrecondition", reason: "EMERGENCY_ENDED" });
  });

  it("lists newest first in pages", async () => {
    const someone = await signUpPatient(t);
    const client = emergencyClient(t, someone.interceptor);
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { emergency } = await client.createEmergency(emergencyRequest(someone.patient));
      names.push(emergency?.name ?? "");
      await client.cancelEmergency({ name: emergency?.name ?? "" }); // so the next one is not merged
    }
    const page1 = await client.listEmergencies({ parent: someone.patient, pageSize: 2 });
    const page2 = await client.listEmergencies({
      parent: someone.patient,
      pageSize: 2,
      pageToken: page1.nextPageToken,
    });
    expect([...page1.emergencies, ...page2.emergencies].map((e) => e.name)).toEqual([...names].reverse());
    expect(page2.nextPageToken).toBe("");
    const replay = await refusal(
      client.listEmergencies({
        parent: someone.patient,
        states: [Emergency_State.CLOSED],
        pageToken: page1.nextPageToken,
      }),
    );
    expect(replay.code).toBe("InvalidArgument");
  });

  it("a doctor may raise one for a patient but not read it; an admin reads it; a patient without a family grant gets NOT_FOUND", async () => {
    const someone = await signUpPatient(t);
    const doctor = await staffSession(t, "doctor");
    const { emergency } = await emergencyClient(t, doctor.interceptor).createEmergency(
      emergencyRequest(someone.patient),
    );
    expect(emergency?.requestedBy?.principal).toMatch(/^doctors\//);
    expect(
      (await refusal(emergencyClient(t, doctor.interceptor).getEmergency({ name: emergency?.name ?? "" }))).code,
    ).toBe("PermissionDenied");
    const admin = await staffSession(t, "admin");
    const read = await emergencyClient(t, admin.interceptor).getEmergency({ name: emergency?.name ?? "" });
    expect(read.emergency?.name).toBe(emergency?.name);
    const stranger = await refusal(
      emergencyClient(t, patient.interceptor).createEmergency(emergencyRequest(someone.patient)),
    );
    expect(stranger.code).toBe("NotFound");
    const missing = await refusal(
      emergencyClient(t, admin.interceptor).createEmergency(
        emergencyRequest("patients/00000000-0000-7000-8000-000000000000"),
      ),
    );
    expect(missing.code).toBe("NotFound");
  });

  it("the emergency, its audit entry and its outbox row commit together", async () => {
    const someone = await signUpPatient(t);
    const { emergency } = await emergencyClient(t, someone.interceptor).createEmergency(
      emergencyRequest(someone.patient),
    );
    const id = emergency?.name.split("/").at(-1) ?? "";
    const pg = await import("pg");
    const client = new pg.default.Client({ connectionString: t.database.url });
    await client.connect();
    try {
      const audit = await client.query(
        `select action, outcome from audit_log where resource = $1 and rpc like '%CreateEmergency'`,
        [emergency?.name],
      );
      expect(audit.rows).toEqual([{ action: "create", outcome: "success" }]);
      const outbox = await client.query(
        `select topic, priority, msg_id from emergency_outbox where emergency_id = $1`,
        [id],
      );
      expect(outbox.rows).toEqual([{ topic: "requested", priority: 1, msg_id: id }]);
    } finally {
      await client.end();
    }
  });
});
