import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EnvelopeCipher, EnvelopeError } from "../../../src/shared/crypto/envelope.ts";
import { loadKeyRing, parseKeyRing } from "../../../src/shared/crypto/key-ring.ts";

const k1 = randomBytes(32).toString("base64");
const k2 = randomBytes(32).toString("base64");
const row = { table: "medical_records", row: "r1" };

describe("envelope encryption", () => {
  it("round-trips a field under a per-row data key wrapped by the current KEK", () => {
    const cipher = new EnvelopeCipher(parseKeyRing(`k1=${k1}\n`, "test"));
    const key = cipher.newDataKey(row);
    expect(key.keyId).toBe("k1");
    const sealed = key.sealText("content", "penicillin allergy");
    expect(sealed).not.toContain("penicillin");
    expect(cipher.openDataKey(key.wrapped, row).openText("content", sealed)).toBe("penicillin allergy");
  });

  it("fails to open a field or a wrapped key anywhere else: another row, column or table", () => {
    const cipher = new EnvelopeCipher(parseKeyRing(`k1=${k1}\n`, "test"));
    const key = cipher.newDataKey(row);
    const sealed = key.sealText("content", "x");
    expect(() => key.openText("other_column", sealed)).toThrow(EnvelopeError);
    expect(() => cipher.openDataKey(key.wrapped, { ...row, row: "r2" })).toThrow(EnvelopeError);
    expect(() => cipher.openDataKey(key.wrapped, { ...row, table: "patients" })).toThrow(EnvelopeError);
    const otherKey = cipher.newDataKey({ ...row, row: "r2" });
    expect(() => otherKey.openText("content", sealed)).toThrow(EnvelopeError);
    // Another character in place of the second-to-last (a whole base64url digit of the tag).
    const flipped = `${sealed.slice(0, -2)}${sealed.at(-2) === "A" ? "B" : "A"}${sealed.slice(-1)}`;
    expect(() => key.openText("content", flipped)).toThrow(EnvelopeError);
  });

  it("rotates: a new current KEK wraps new keys at once, old ones still open, and rewrap moves a row", () => {
    const before = new EnvelopeCipher(parseKeyRing(`k1=${k1}\n`, "test"));
    const old = before.newDataKey(row);
    const sealed = old.sealText("content", "asthma");
    const after = new EnvelopeCipher(parseKeyRing(`k1=${k1}\nk2=${k2}\n`, "test"));
    expect(after.newDataKey(row).keyId).toBe("k2");
    expect(after.openDataKey(old.wrapped, row).openText("content", sealed)).toBe("asthma");
    const rewrapped = after.rewrap(old.wrapped, row);
    expect(rewrapped.keyId).toBe("k2");
    const onlyNew = new EnvelopeCipher(parseKeyRing(`k2=${k2}\n`, "test"));
    expect(onlyNew.openDataKey(rewrapped.wrapped, row).openText("content", sealed)).toBe("asthma");
    expect(() => onlyNew.openDataKey(old.wrapped, row)).toThrow(/unknown key-encryption key/);
    // The fingerprint of a row survives re-wrapping (same data key).
    expect(onlyNew.openDataKey(rewrapped.wrapped, row).mac("p", Buffer.from("a"))).toBe(old.mac("p", Buffer.from("a")));
  });

  it("parses key ring files strictly and never echoes a key", () => {
    expect(() => parseKeyRing("k1=short\n", "f")).toThrow(/32 bytes/);
    expect(() => parseKeyRing(`k1=${k1}\n`, "f", "k9")).toThrow(/no key "k9"/);
    expect(() => parseKeyRing("# only a comment\n", "f")).toThrow(/no key/);
    try {
      parseKeyRing(`bad id=${k1}\n`, "f");
    } catch (error) {
      expect((error as Error).message).not.toContain(k1);
    }
    expect(parseKeyRing(`k1=${k1}\nk2=${k2}\n`, "f", "k1").currentKeyId).toBe("k1");
  });

  it("generates a dev key ring once and keeps it; a configured file must exist", async () => {
    const dir = await mkdtemp(join(tmpdir(), "key-ring-"));
    try {
      const path = join(dir, "keys", "ring");
      const first = await loadKeyRing(path, { create: true });
      const second = await loadKeyRing(path, { create: true });
      expect(second.currentKeyId).toBe(first.currentKeyId);
      expect(await readFile(path, "utf8")).toContain(`${first.currentKeyId}=`);
      await expect(loadKeyRing(join(dir, "missing"), { create: false })).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
