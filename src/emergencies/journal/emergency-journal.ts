import { closeSync, fsyncSync, openSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../observability/logger.ts";
import {
  decodeEntry,
  encodeEntry,
  type JournalCodec,
  type JournalEntry,
  type JournalledEmergency,
} from "./journal-record.ts";

/** An accepted emergency not yet replayed into PostgreSQL. */
export interface PendingEmergency {
  readonly emergency: JournalledEmergency;
  /** When JetStream acknowledged its dispatch message; undefined while it has not. */
  readonly publishedAt: Date | undefined;
}

interface Queued {
  readonly line: string;
  readonly entry: JournalEntry;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const filePattern = /^journal-\d{13}-\d+-\d+\.log$/;

/**
 * Files journals of this process are writing now. Two in-process instances on one
 * DATA_DIR (tests of replicas) must neither replay nor delete each other's live file;
 * other processes are kept out by the LOCK file.
 */
const liveFiles = new Set<string>();

/**
 * The emergencies' local, append-only journal (functional safety 1): the fallback of
 * CreateEmergency while PostgreSQL is unreachable. Each record is one checksummed,
 * sealed line (journal-record.ts); `append` resolves once its line is written and
 * fdatasync'ed, and concurrent appends share one write and one sync (group commit).
 *
 * A process writes one file of its own (`journal-<ms>-<pid>-<n>.log`) and, on opening,
 * reads every file left in the folder: accepted entries without their `replayed` line
 * are pending. Once nothing is pending, the files are rotated away (a fresh file, the
 * old ones deleted), so the folder stays small. A torn last line (a crash mid-write,
 * never acknowledged) or a damaged one is skipped and counted.
 *
 * One instance per folder: DATA_DIR belongs to one replica. A `LOCK` file with the
 * pid refuses a second live process.
 */
export class EmergencyJournal {
  readonly #dir: string;
  readonly #codec: JournalCodec;
  readonly #logger: Logger;
  readonly #pending = new Map<string, PendingEmergency>();
  readonly #byRequest = new Map<string, string>();
  #handle: FileHandle;
  #file: string;
  #oldFiles: string[];
  #queue: Queued[] = [];
  #flushing: Promise<void> | undefined;
  /** A failed write may have left part of a line: the next write starts on a new line. */
  #torn = false;
  #closed = false;

  private constructor(dir: string, codec: JournalCodec, logger: Logger, handle: FileHandle, file: string) {
    this.#dir = dir;
    this.#codec = codec;
    this.#logger = logger;
    this.#handle = handle;
    this.#file = file;
    this.#oldFiles = [];
  }

  /** Opens the folder (creating it), reads what earlier processes left, and starts a file of its own. */
  static async open(dir: string, codec: JournalCodec, logger: Logger): Promise<EmergencyJournal> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await takeLock(dir);
    const names = (await readdir(dir))
      .filter((name) => filePattern.test(name) && !liveFiles.has(join(dir, name)))
      .sort();
    const { file, handle } = await newFile(dir);
    const journal = new EmergencyJournal(dir, codec, logger, handle, file);
    let damaged = 0;
    for (const name of names) {
      const text = await readFile(join(dir, name), "utf8");
      const lines = text.split("\n");
      for (const [index, line] of lines.entries()) {
        if (line === "") continue;
        const entry = decodeEntry(line, codec);
        if (entry === undefined) {
          // The last line of a file torn by a crash was never acknowledged; any other is damage.
          if (index !== lines.length - 1) damaged += 1;
          continue;
        }
        journal.#apply(entry);
      }
      journal.#oldFiles.push(name);
    }
    if (damaged > 0) logger.error({ damaged, dir }, "emergency journal: damaged lines skipped");
    if (journal.#pending.size > 0) {
      logger.warn({ pending: journal.#pending.size }, "emergency journal: emergencies accepted without the database");
    }
    return journal;
  }

  /** Pending emergencies, P1 first, then oldest first. */
  pending(): PendingEmergency[] {
    return [...this.#pending.values()].sort(
      (a, b) =>
        a.emergency.priority - b.emergency.priority || a.emergency.createdAt.localeCompare(b.emergency.createdAt),
    );
  }

  get(id: string): PendingEmergency | undefined {
    return this.#pending.get(id);
  }

  /** The pending emergency a patient's request id made, if any. */
  byRequest(patientId: string, requestId: string): PendingEmergency | undefined {
    const id = this.#byRequest.get(`${patientId}|${requestId}`);
    return id === undefined ? undefined : this.#pending.get(id);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Appends an entry; resolves once it is on disk (fdatasync), after the in-memory view has it. */
  append(entry: JournalEntry): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the emergency journal is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: encodeEntry(entry, this.#codec), entry, resolve, reject });
      this.#schedule();
    });
  }

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing !== undefined) await this.#flushing;
    await this.#handle.close().catch(() => undefined);
    liveFiles.delete(join(this.#dir, this.#file));
    await rm(join(this.#dir, "LOCK"), { force: true });
  }

  #schedule(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        const text = (this.#torn ? "\n" : "") + batch.map((queued) => queued.line).join("");
        await writeAll(this.#handle, Buffer.from(text, "utf8"));
        await this.#handle.datasync();
        this.#torn = false;
      } catch (error) {
        this.#torn = true;
        for (const queued of batch) queued.reject(error);
        continue;
      }
      for (const queued of batch) this.#apply(queued.entry);
      for (const queued of batch) queued.resolve();
      await this.#rotateWhenIdle();
    }
  }

  #apply(entry: JournalEntry): void {
    if (entry.t === "accepted") {
      const { emergency } = entry;
      const known = this.#pending.get(emergency.id);
      this.#pending.set(emergency.id, { emergency, publishedAt: known?.publishedAt });
      this.#byRequest.set(`${emergency.patientId}|${emergency.requestId}`, emergency.id);
    } else if (entry.t === "published") {
      const known = this.#pending.get(entry.id);
      if (known !== undefined) this.#pending.set(entry.id, { ...known, publishedAt: new Date(entry.at) });
    } else {
      const known = this.#pending.get(entry.id);
      if (known === undefined) return;
      this.#pending.delete(entry.id);
      this.#byRequest.delete(`${known.emergency.patientId}|${known.emergency.requestId}`);
    }
  }

  /** With nothing pending, starts an empty file and deletes the old ones (every entry in them is in PostgreSQL). */
  async #rotateWhenIdle(): Promise<void> {
    if (this.#pending.size > 0 || this.#queue.length > 0) return;
    const { size } = await this.#handle.stat();
    if (size === 0 && this.#oldFiles.length === 0) return;
    const { file, handle } = await newFile(this.#dir);
    const old = [...this.#oldFiles, this.#file];
    await this.#handle.close().catch(() => undefined);
    liveFiles.delete(join(this.#dir, this.#file));
    this.#handle = handle;
    this.#file = file;
    this.#oldFiles = [];
    for (const name of old) await rm(join(this.#dir, name), { force: true });
    syncDir(this.#dir);
    this.#logger.debug({ removed: old.length }, "emergency journal rotated");
  }
}

async function newFile(dir: string): Promise<{ file: string; handle: FileHandle }> {
  for (let n = 0; ; n += 1) {
    const file = `journal-${String(Date.now()).padStart(13, "0")}-${process.pid}-${n}.log`;
    // Exclusive: a rotation within the same millisecond must never reopen the file it deletes.
    const handle = await open(join(dir, file), "ax", 0o600).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") return undefined;
      throw error;
    });
    if (handle === undefined) continue;
    liveFiles.add(join(dir, file));
    syncDir(dir); // the new name survives a crash too
    return { file, handle };
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, null);
    offset += bytesWritten;
  }
}

/** Refuses a folder another live process journals into. */
async function takeLock(dir: string): Promise<void> {
  const lock = join(dir, "LOCK");
  const holder = Number.parseInt(await readFile(lock, "utf8").catch(() => ""), 10);
  if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
    throw new Error(`the emergency journal ${dir} is in use by process ${holder}: give each instance its own DATA_DIR`);
  }
  await writeFile(lock, `${process.pid}\n`, { mode: 0o600 });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
