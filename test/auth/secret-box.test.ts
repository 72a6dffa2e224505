import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SecretBox, SecretBoxError } from "../../src/auth/secret-box.ts";

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const box = new SecretBox({ currentKeyId: "k1", keys: new Map([["k1", k1]]) });
const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/** `sealed` with one base64url character of part `index` changed. */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split(".");
  const part = parts[index]!;
  parts[index] = (part[0] === "A" ? "B" : "A") + part.slice(1);
  return parts.join(".");
}

describe("SecretBox", () => {
  it("seals to v1.<kid>.<iv>.<ciphertext+tag> and opens it again", () => {
    const sealed = box.seal(secret);
    expect(sealed).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(secret);
    expect(Buffer.from(sealed.split(".")[3]!, "base64url")).toHaveLength(secret.length + 16);
    expect(box.open(sealed)).toBe(secret);
    expect(box.open(box.seal(""))).toBe("");
    expect(box.open(box.seal("ünïcödé ✓"))).toBe("ünïcödé ✓");
  });

  it("uses a fresh IV every time", () => {
    expect(box.seal(secret)).not.toBe(box.seal(secret));
  });

  it("throws for a wrong key under the same id, or an unknown key id", () => {
    const other = new SecretBox({ currentKeyId: "k1", keys: new Map([["k1", k2]]) });
    expect(() => other.open(box.seal(secret))).toThrow(SecretBoxError);
    const elsewhere = new SecretBox({ currentKeyId: "k9", keys: new Map([["k9", k1]]) });
    expect(() => elsewhere.open(box.seal(secret))).toThrow(/unknown secret box key "k1"/);
  });

  it("throws for a tampered IV, ciphertext, tag or header, and for garbage", () => {
    const sealed = box.seal(secret);
    expect(() => box.open(tamper(sealed, 2))).toThrow(SecretBoxError);
    expect(() => box.open(tamper(sealed, 3))).toThrow(SecretBoxError);
    expect(() => box.open(sealed.slice(0, -2))).toThrow(SecretBoxError);
    expect(() => box.open(sealed.replace(/^v1/, "v2"))).toThrow(SecretBoxError);
    for (const garbage of ["", "v1", "v1.k1.x.y", "v1.k1..", `${sealed}.extra`, secret]) {
      expect(() => box.open(garbage)).toThrow(SecretBoxError);
    }
  });

  it("binds a sealed value to its context: another account's row does not open it", () => {
    const sealed = box.seal(secret, "account-1");
    expect(box.open(sealed, "account-1")).toBe(secret);
    expect(() => box.open(sealed, "account-2")).toThrow(SecretBoxError);
    expect(() => box.open(sealed)).toThrow(SecretBoxError);
  });

  it("rotates keys: seals with the current one, still opens what older ones sealed", () => {
    const old = box.seal(secret);
    const rotated = new SecretBox({
      currentKeyId: "k2",
      keys: new Map([
        ["k1", k1],
        ["k2", k2],
      ]),
    });
    expect(rotated.open(old)).toBe(secret);
    const fresh = rotated.seal(secret);
    expect(fresh.startsWith("v1.k2.")).toBe(true);
    expect(() => box.open(fresh)).toThrow(SecretBoxError);
  });

  it("refuses keys that are not 32 bytes, bad key ids, and a current id without a key", () => {
    expect(() => new SecretBox({ currentKeyId: "k1", keys: new Map([["k1", randomBytes(16)]]) })).toThrow(RangeError);
    expect(() => new SecretBox({ currentKeyId: "a.b", keys: new Map([["a.b", k1]]) })).toThrow(RangeError);
    expect(() => new SecretBox({ currentKeyId: "k2", keys: new Map([["k1", k1]]) })).toThrow(RangeError);
  });
});
