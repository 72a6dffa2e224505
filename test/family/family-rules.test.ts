import { describe, expect, it } from "vitest";
import type { Caller, FamilyLink } from "../../src/family/family-link.ts";
import {
  comingOfAge,
  effectiveState,
  isMinorAt,
  requireAllowedChange,
  requireEtag,
  sideOf,
} from "../../src/family/family-rules.ts";

const day = 86_400_000;

function link(overrides: Partial<FamilyLink> = {}): FamilyLink {
  return {
    id: "0193a000-0000-7000-8000-000000000001",
    guardianId: "g",
    dependentId: "d",
    inviteeEmailHash: undefined,
    relationship: "child",
    grants: ["view_records", "pay_bills"],
    storedState: "active",
    consent: undefined,
    revocation: undefined,
    endTime: undefined,
    createRequestId: undefined,
    version: 3,
    createTime: new Date("2026-01-01T00:00:00Z"),
    updateTime: new Date("2026-01-01T00:00:00Z"),
    dependent: undefined,
    ...overrides,
  };
}

const patient = (id: string): Caller => ({ name: `patients/${id}`, role: "patient", patientId: id });

describe("age of majority", () => {
  it("comes at 00:00 UTC on the birthday", () => {
    expect(comingOfAge("2010-06-15", 18).toISOString()).toBe("2028-06-15T00:00:00.000Z");
    expect(isMinorAt("2010-06-15", new Date("2028-06-14T23:59:59.999Z"), 18)).toBe(true);
    expect(isMinorAt("2010-06-15", new Date("2028-06-15T00:00:00.000Z"), 18)).toBe(false);
  });

  it("comes on 1 March for a 29 February birthday in a non-leap year", () => {
    expect(comingOfAge("2008-02-29", 18).toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(comingOfAge("2008-02-29", 20).toISOString()).toBe("2028-02-29T00:00:00.000Z");
  });

  it("follows the configured age", () => {
    expect(comingOfAge("2010-06-15", 21).toISOString()).toBe("2031-06-15T00:00:00.000Z");
  });
});

describe("effective state, evaluated at read time", () => {
  const lifetime = 30 * day;
  it("turns an ACTIVE link EXPIRED at its end time", () => {
    const active = link({ endTime: new Date("2027-01-01T00:00:00Z") });
    expect(effectiveState(active, new Date("2026-12-31T23:59:59Z"), lifetime)).toBe("active");
    expect(effectiveState(active, new Date("2027-01-01T00:00:00Z"), lifetime)).toBe("expired");
  });

  it("lets an unanswered invitation lapse after its lifetime", () => {
    const pending = link({ storedState: "pending_consent" });
    expect(effectiveState(pending, new Date("2026-01-30T23:59:59Z"), lifetime)).toBe("pending_consent");
    expect(effectiveState(pending, new Date("2026-01-31T00:00:00Z"), lifetime)).toBe("expired");
  });

  it("leaves ended states alone", () => {
    const revoked = link({ storedState: "revoked", endTime: new Date("2026-02-01T00:00:00Z") });
    expect(effectiveState(revoked, new Date("2030-01-01T00:00:00Z"), lifetime)).toBe("revoked");
  });
});

describe("who stands where on a link", () => {
  it("knows the guardian, the dependent, an invitee by email and admins", () => {
    expect(sideOf(link(), patient("g"), false)).toBe("guardian");
    expect(sideOf(link(), patient("d"), false)).toBe("dependent");
    expect(sideOf(link(), patient("x"), false)).toBe("none");
    expect(sideOf(link({ dependentId: undefined }), patient("x"), true)).toBe("dependent");
    // Once the dependent is known, an email match no longer makes anyone else the dependent.
    expect(sideOf(link(), patient("x"), true)).toBe("none");
    expect(sideOf(link(), { name: "admins/a", role: "admin", patientId: undefined }, false)).toBe("admin");
    expect(sideOf(link(), { name: "doctors/a", role: "doctor", patientId: undefined }, false)).toBe("none");
  });

  it("lets the dependent only narrow grants", () => {
    expect(() => requireAllowedChange("dependent", link(), { grants: ["pay_bills"] })).not.toThrow();
    expect(() => requireAllowedChange("dependent", link(), { grants: ["manage_profile"] })).toThrow(
      expect.objectContaining({ reason: "DEPENDENT_MAY_ONLY_NARROW" }),
    );
    expect(() => requireAllowedChange("dependent", link(), { relationship: "ward" })).toThrow(
      expect.objectContaining({ reason: "DEPENDENT_MAY_ONLY_NARROW" }),
    );
    expect(() => requireAllowedChange("guardian", link(), { grants: ["manage_profile"] })).not.toThrow();
    expect(() => requireAllowedChange("none", link(), {})).toThrow(expect.objectContaining({ kind: "not-found" }));
  });

  it("checks an etag only when one is given", () => {
    expect(() => requireEtag(link(), "")).not.toThrow();
    expect(() => requireEtag(link(), "v3")).not.toThrow();
    expect(() => requireEtag(link(), "v2")).toThrow(expect.objectContaining({ reason: "ETAG_MISMATCH" }));
  });
});
