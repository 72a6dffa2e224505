import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BlindIndex, normaliseEmail } from "../../../src/shared/crypto/blind-index.ts";
import { DataKeyCache } from "../../../src/shared/crypto/data-key-cache.ts";
import { EnvelopeCipher, EnvelopeError } from "../../../src/shared/crypto/envelope.ts";
import { parseKeyRing } from "../../../src/shared/crypto/key-ring.ts";

describe("BlindIndex", () => {
  it("indexes the trimmed, lower-cased address: the same for every spelling, hex HMAC-SHA-256", () => {
    const index = new BlindIndex(randomBytes(32));
    expect(index.email(" Asha@Example.COM ")).toBe(index.email("asha@example.com"));
    expect(index.email("asha@example.com")).toMatch(/^[0-9a-f]{64}$/);
    expect(index.email("asha@example.com")).not.toBe(index.email("asha@example.org"));
    expect(normaliseEmail("  Asha@Example.COM\n")).toBe("asha@example.com");
  });

  it("depends on its key: another key gives other indexes, so the database alone cannot test a guess", () => {
    const address = "asha@example.com";
    expect(new BlindIndex(randomBytes(32)).email(address)).not.toBe(new BlindIndex(randomBytes(32)).email(address));
    expect(() => new BlindIndex(randomBytes(16))).toThrow("32 bytes");
  });
});

describe("DataKeyCache", () => {
  const cipher = new EnvelopeCipher(parseKeyRing(`k1=${randomBytes(32).toString("base64")}\n`, "test"));

  it("opens a row's key once, and a wrapped key copied to another row still fails", () => {
    const cache = new DataKeyCache(cipher, 2);
    const key = cipher.newDataKey({ table: "patients", row: "a" });
    const opened = cache.open(key.wrapped, { table: "patients", row: "a" });
    expect(cache.open(key.wrapped, { table: "patients", row: "a" })).toBe(opened);
    expect(() => cache.open(key.wrapped, { table: "patients", row: "b" })).toThrow(EnvelopeError);
    expect(() => cache.open(key.wrapped, { table: "accounts", row: "a" })).toThrow(EnvelopeError);
  });

  it("holds at most its bound, dropping the least recently used", () => {
    const cache = new DataKeyCache(cipher, 2);
    const keys = ["a", "b", "c"].map((row) => cipher.newDataKey({ table: "patients", row }));
    const [a, b, c] = keys as [(typeof keys)[0], (typeof keys)[0], (typeof keys)[0]];
    const openA = cache.open(a.wrapped, a.binding);
    const openB = cache.open(b.wrapped, b.binding);
    expect(cache.open(a.wrapped, a.binding)).toBe(openA); // a is now the most recent
    cache.open(c.wrapped, c.binding); // drops b
    expect(cache.open(a.wrapped, a.binding)).toBe(openA);
    expect(cache.open(b.wrapped, b.binding)).not.toBe(openB); // unwrapped again
    cache.remember(c);
    expect(cache.open(c.wrapped, c.binding)).toBe(c);
  });
});
