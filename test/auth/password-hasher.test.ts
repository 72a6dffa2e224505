import { describe, expect, it } from "vitest";
import { defaultScryptParams, PasswordHasher } from "../../src/auth/password-hasher.ts";

/** A cheap hasher: the behaviour does not depend on the cost. */
const cheap = new PasswordHasher({ N: 2 ** 10, r: 8, p: 1, keyLength: 32 });

async function medianMs(run: () => Promise<unknown>, times: number): Promise<number> {
  const durations: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await run();
    durations.push(performance.now() - start);
  }
  return durations.sort((a, b) => a - b)[Math.floor(times / 2)]!;
}

describe("PasswordHasher", () => {
  it("hashes with strong production defaults, parameters and salt encoded in the stored string", async () => {
    expect(defaultScryptParams).toEqual({ N: 32768, r: 8, p: 1, keyLength: 32 });
    const stored = await new PasswordHasher().hash("tangerine kites over Pune");
    const parts = stored.split("$");
    expect(parts.slice(0, 4)).toEqual(["scrypt", "32768", "8", "1"]);
    expect(Buffer.from(parts[4]!, "base64url")).toHaveLength(16);
    expect(Buffer.from(parts[5]!, "base64url")).toHaveLength(32);
    expect(stored).not.toContain("tangerine");
  });

  it("verifies the right password and refuses a wrong one", async () => {
    const stored = await cheap.hash("tangerine kites over Pune");
    expect(await cheap.verify("tangerine kites over Pune", stored)).toBe(true);
    expect(await cheap.verify("tangerine kites over pune", stored)).toBe(false);
    expect(await cheap.verify("", stored)).toBe(false);
  });

  it("salts every hash, so equal passwords do not give equal hashes", async () => {
    const [a, b] = await Promise.all([cheap.hash("same password here"), cheap.hash("same password here")]);
    expect(a).not.toBe(b);
  });

  it("verifies a password typed with composed or decomposed accents alike (NFKC)", async () => {
    const stored = await cheap.hash("caf\u00e9 au lait, s'il vous pla\u00eet");
    expect(await cheap.verify("cafe\u0301 au lait, s'il vous plai\u0302t", stored)).toBe(true);
  });

  it("reads the parameters from the stored hash, so raising them keeps old hashes valid and asks for a rehash", async () => {
    const stronger = new PasswordHasher({ N: 2 ** 11, r: 8, p: 2, keyLength: 32 });
    const old = await cheap.hash("an older stored password");
    expect(await stronger.verify("an older stored password", old)).toBe(true);
    expect(stronger.needsRehash(old)).toBe(true);
    expect(stronger.needsRehash(await stronger.hash("an older stored password"))).toBe(false);
    expect(cheap.needsRehash(old)).toBe(false);
  });

  it("answers false (never throws) for malformed or absurd stored hashes, and asks to rehash them", async () => {
    const good = await cheap.hash("whatever it is now");
    const salt = good.split("$")[4];
    const hash = good.split("$")[5];
    for (const stored of [
      "",
      "plain text password",
      "bcrypt$2b$10$abc",
      `scrypt$1000$8$1$${salt}$${hash}`, // N not a power of two
      `scrypt$1073741824$8$1$${salt}$${hash}`, // N = 2^30 would allocate a terabyte
      `scrypt$1024$8$1$${salt}`,
      `scrypt$1024$8$1$$${hash}`,
    ]) {
      expect(await cheap.verify("whatever it is now", stored)).toBe(false);
      expect(cheap.needsRehash(stored)).toBe(true);
    }
  });

  it("refuses parameters it cannot use", () => {
    expect(() => new PasswordHasher({ N: 1000, r: 8, p: 1, keyLength: 32 })).toThrow(RangeError);
    expect(() => new PasswordHasher({ N: 1024, r: 8, p: 1, keyLength: 8 })).toThrow(RangeError);
  });

  it("dummyVerify spends about the time of a real verification (no user enumeration by timing)", async () => {
    const hasher = new PasswordHasher();
    const stored = await hasher.hash("tangerine kites over Pune");
    await hasher.dummyVerify(); // warm-up
    const real = await medianMs(() => hasher.verify("a wrong password guess", stored), 5);
    const dummy = await medianMs(() => hasher.dummyVerify(), 5);
    expect(dummy / real).toBeGreaterThan(0.6);
    expect(dummy / real).toBeLessThan(1.6);
  });
});
