import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PlatformFeedback_Category } from "../../gen/telemed/patient/v1/consultation_pb.js";
import { signUpPatient, staffSession, type TestSession } from "../support/auth-fixtures.ts";
import { startTestApp, type TestApp } from "../support/test-app.ts";
import { bookFirstFree, consultations, refusal, ShiftedClock } from "./consultation-fixtures.ts";

let t: TestApp;
const clock = new ShiftedClock();
let patient: TestSession;
let other: TestSession;
let admin: TestSession;
let doctor: TestSession;

beforeAll(async () => {
  t = await startTestApp({ CONSULTATION_FEEDBACK_EDIT_WINDOW_SECONDS: "3600" }, { clock });
  [patient, other, admin, doctor] = await Promise.all([
    signUpPatient(t),
    signUpPatient(t),
    staffSession(t, "admin"),
    staffSession(t, "doctor", { doctorId: "vikram-iyer" }),
  ]);
});
afterEach(() => clock.reset());
afterAll(async () => {
  await t?.close();
});

/** A consultation of `patient` with Dr. Vikram Iyer that the doctor has completed. */
async function completedConsultation(): Promise<string> {
  const { consultation, startMs } = await bookFirstFree(consultations(t, patient), patient.patient, clock, {
    doctor: "doctors/vikram-iyer",
  });
  clock.travelTo(new Date(startMs - 60_000));
  const byDoctor = consultations(t, doctor);
  await byDoctor.startConsultation({ name: consultation.name });
  await byDoctor.completeConsultation({ name: consultation.name });
  clock.reset();
  return consultation.name;
}

describe("feedback on a consultation (secondary requirement 1)", () => {
  it("once per completed consultation, readable by its author and admins only, editable until the deadline", async () => {
    const name = await completedConsultation();
    const mine = consultations(t, patient);
    const { feedback } = await mine.createConsultationFeedback({
      parent: name,
      feedback: { rating: 4, comment: "Kind and clear" },
    });
    expect(feedback).toMatchObject({ name: `${name}/feedback`, rating: 4, comment: "Kind and clear", etag: "v1" });

    expect(await refusal(mine.createConsultationFeedback({ parent: name, feedback: { rating: 5 } }))).toMatchObject({
      code: Code.AlreadyExists,
      reason: "FEEDBACK_ALREADY_EXISTS",
    });
    expect(
      (await consultations(t, admin).getConsultationFeedback({ name: `${name}/feedback` })).feedback?.comment,
    ).toBe("Kind and clear");
    expect((await refusal(consultations(t, other).getConsultationFeedback({ name: `${name}/feedback` }))).code).toBe(
      Code.NotFound,
    );
    expect((await refusal(consultations(t, doctor).getConsultationFeedback({ name: `${name}/feedback` }))).code).toBe(
      Code.PermissionDenied,
    );

    const updated = await mine.updateConsultationFeedback({
      feedback: { name: `${name}/feedback`, rating: 5, etag: "v1" },
      updateMask: { paths: ["rating"] },
    });
    expect(updated.feedback).toMatchObject({ rating: 5, comment: "Kind and clear", etag: "v2" });
    expect(
      await refusal(
        mine.updateConsultationFeedback({
          feedback: { name: `${name}/feedback`, rating: 3, etag: "v1" },
          updateMask: { paths: ["rating"] },
        }),
      ),
    ).toMatchObject({ code: Code.Aborted, reason: "ETAG_MISMATCH" });

    clock.travelTo(new Date(Date.now() + 2 * 3_600_000));
    expect(
      await refusal(
        mine.updateConsultationFeedback({
          feedback: { name: `${name}/feedback`, comment: "Changed" },
          updateMask: { paths: ["comment"] },
        }),
      ),
    ).toMatchObject({ code: Code.FailedPrecondition, reason: "FEEDBACK_EDIT_WINDOW_CLOSED" });
  });

  it("a consultation that is not completed cannot be rated", async () => {
    const { consultation } = await bookFirstFree(consultations(t, patient), patient.patient, clock, {
      doctor: "doctors/vikram-iyer",
    });
    expect(
      await refusal(
        consultations(t, patient).createConsultationFeedback({ parent: consultation.name, feedback: { rating: 5 } }),
      ),
    ).toMatchObject({ code: Code.FailedPrecondition, reason: "CONSULTATION_NOT_COMPLETED" });
  });

  it("a doctor's rating is aggregated: counts per star and the mean, no comments", async () => {
    const before = (await consultations(t, other).getDoctorRating({ name: "doctors/vikram-iyer/rating" })).rating;
    const name = await completedConsultation();
    await consultations(t, patient).createConsultationFeedback({
      parent: name,
      feedback: { rating: 2, comment: "Late" },
    });
    const { rating } = await consultations(t, other).getDoctorRating({ name: "doctors/vikram-iyer/rating" });
    expect(rating?.ratingCount).toBe((before?.ratingCount ?? 0n) + 1n);
    expect(rating?.starCounts[1]).toBe((before?.starCounts[1] ?? 0n) + 1n);
    expect(rating?.averageRating).toBeGreaterThan(0);
    expect(JSON.stringify(rating, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain("Late");
    const { doctor: listed } = await consultations(t, other).getDoctor({ name: "doctors/vikram-iyer" });
    expect(listed?.rating?.ratingCount).toBe(rating?.ratingCount);
    expect((await refusal(consultations(t, other).getDoctorRating({ name: "doctors/nobody/rating" }))).code).toBe(
      Code.NotFound,
    );
  });
});

describe("platform feedback", () => {
  it("is recorded once per request id", async () => {
    const request = {
      parent: patient.patient,
      platformFeedback: {
        category: PlatformFeedback_Category.USABILITY,
        rating: 4,
        comment: "Booking was easy",
        appVersion: "2.3.1",
      },
      requestId: randomUUID(),
    };
    const first = await consultations(t, patient).createPlatformFeedback(request);
    const again = await consultations(t, patient).createPlatformFeedback(request);
    expect(first.platformFeedback?.name).toMatch(new RegExp(`^${patient.patient}/platformFeedback/`));
    expect(again.platformFeedback?.name).toBe(first.platformFeedback?.name);
    expect(
      (await refusal(consultations(t, other).createPlatformFeedback({ ...request, requestId: randomUUID() }))).code,
    ).toBe(Code.NotFound);
  });
});
