/**
 * `npm run keys:rotate`: re-wraps, under the current key-encryption key
 * (DATA_ENCRYPTION_KEY_ID, else the last key of DATA_ENCRYPTION_KEYS_FILE), the data key
 * of every row still wrapped by an older one: `medical_records`, `patient_devices`,
 * `patients` and `accounts` (src/records/key-rotation.ts). Content is not re-encrypted; rows keep their version.
 * Batches of one transaction each, `for update skip locked`, so it runs beside the live
 * service (and a second rotator). Safe to kill and run again: it continues where it was.
 *
 * Rotating a key: add the new key to the file, name it in DATA_ENCRYPTION_KEY_ID (or put
 * it last), restart every instance (new writes use it at once), run this, and remove the
 * old key from the ring only once the summary shows no row left on it.
 *
 * Environment: the service's (DATABASE_URL, DATA_ENCRYPTION_KEYS_FILE, DATA_ENCRYPTION_KEY_ID;
 * DATABASE_URL unset: the embedded PostgreSQL in DATA_DIR), and
 *   KEYS_ROTATE_BATCH_SIZE  rows per batch (transaction), 1 to 10000, default 500
 *   KEYS_ROTATE_PAUSE_MS    pause between batches (throttle), 0 to 60000, default 0
 * Options: --batch-size <n>, --pause-ms <n> (override the above).
 *
 * Prints a line per batch (re-wrapped and remaining per table) and a summary with the
 * rows per key id. Exit codes: 0 every row on the current key, 1 rows remain (locked
 * meanwhile, written under an old key by an instance not yet restarted, or unreadable:
 * listed by id) or the run was interrupted (SIGINT/SIGTERM end it after the batch in
 * progress), 2 bad configuration or the run failed.
 */
import { parseArgs } from "node:util";
import { createLogger } from "../src/observability/logger.ts";
import { rotateDataKeys } from "../src/records/key-rotation.ts";
import { EnvelopeCipher } from "../src/shared/crypto/envelope.ts";
import { loadKeyRing } from "../src/shared/crypto/key-ring.ts";
import { scriptConfig, withDatabase } from "./script-database.ts";

class UsageError extends Error {}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { "batch-size": { type: "string" }, "pause-ms": { type: "string" } } });
  const batchSize = whole(
    "--batch-size / KEYS_ROTATE_BATCH_SIZE",
    values["batch-size"] ?? process.env.KEYS_ROTATE_BATCH_SIZE,
    500,
    1,
    10_000,
  );
  const pauseMs = whole(
    "--pause-ms / KEYS_ROTATE_PAUSE_MS",
    values["pause-ms"] ?? process.env.KEYS_ROTATE_PAUSE_MS,
    0,
    0,
    60_000,
  );
  const config = scriptConfig();
  if (config === undefined) return 2;
  const settings = config.records;
  let ring: Awaited<ReturnType<typeof loadKeyRing>>;
  try {
    ring = await loadKeyRing(settings.keysFile, { create: false, currentKeyId: settings.currentKeyId });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === undefined ? (error as Error).message : `cannot read ${settings.keysFile} (${code})`);
  }
  const cipher = new EnvelopeCipher(ring);
  const logger = createLogger(config.logLevel);
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  say(`current key "${cipher.currentKeyId}", batches of ${batchSize}${pauseMs > 0 ? `, ${pauseMs} ms apart` : ""}`);
  const results = await withDatabase(config, logger, (orm) =>
    rotateDataKeys(() => orm.em.fork(), cipher, {
      batchSize,
      pauseMs,
      signal: stop.signal,
      onProgress: (p) => say(`${p.table}: ${p.rewrapped} re-wrapped, ${p.remaining} remaining`),
    }),
  );
  let left = 0;
  for (const result of results) {
    left += result.remaining;
    const keys = [...result.keysInUse].map(([id, n]) => `${id}=${n}`).join(" ") || "none";
    say(`${result.table}: ${result.rewrapped} re-wrapped, ${result.remaining} remaining; rows per key: ${keys}`);
    if (result.failed.length > 0) {
      say(
        `${result.table}: ${result.failed.length} could not be opened (unknown key or tampered): ${result.failed.join(" ")}`,
      );
    }
  }
  if (stop.signal.aborted) {
    say("interrupted; run it again to continue");
    return 1;
  }
  if (left > 0) {
    say(
      `${left} rows remain on other keys (locked meanwhile, written by an instance not yet on "${cipher.currentKeyId}", or listed above); run it again`,
    );
    return 1;
  }
  say(`done: every wrapped data key is under "${cipher.currentKeyId}"`);
  return 0;
}

function say(line: string): void {
  process.stdout.write(`keys:rotate: ${line}\n`);
}

function whole(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!/^[0-9]{1,6}$/.test(text) || value < min || value > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Database errors can quote SQL: print only the kind of failure.
    const message = error instanceof UsageError ? error.message : `the rotation failed (${errorName(error)})`;
    process.stderr.write(`keys:rotate: ${message}\n`);
    process.exitCode = 2;
  },
);

function errorName(error: unknown): string {
  if (error instanceof Error) return (error as { code?: string }).code ?? error.name;
  return "unknown error";
}
