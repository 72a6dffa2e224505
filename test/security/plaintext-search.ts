import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import type { Redis } from "ioredis";

const run = promisify(execFile);

/** A unique value written through the API, which must never be found in clear where data rests or travels. */
export interface Canary {
  /** What it was written as, for example `emergency.description`. */
  readonly label: string;
  /** What is searched for (an email's local part, a phone's digits). */
  readonly needle: string;
}

/** One canary found somewhere. */
export interface Leak {
  readonly canary: string;
  /** The kind of place: `postgres`, `nats-store`, `nats-stream`, `nats-wire`, `redis`, `log`, `data-dir`. */
  readonly place: string;
  /** Where in it: a table and column, a file, a subject, a key, a log message. */
  readonly where: string;
  /** `plain`, `hex` (a bytea in pg_dump) or `base64` (an unencrypted token or JSON bytes). */
  readonly encoding: string;
}

/** Something searched, for the report: a place and how much of it there was. */
export interface Searched {
  readonly place: string;
  readonly items: number;
  readonly bytes: number;
}

/**
 * The forms a canary takes when bytes are written as text: as is, hex (how pg_dump
 * writes a bytea) and base64/base64url at each of the three alignments (the part of
 * the encoding that depends on the canary's bytes alone), so a JWS payload, a
 * protobuf in a bytea or a base64 JSON field that carries it in clear is found too.
 */
export function formsOf(needle: string): Array<{ encoding: string; text: string }> {
  const bytes = Buffer.from(needle, "utf8");
  const forms = [
    { encoding: "plain", text: needle },
    { encoding: "hex", text: bytes.toString("hex") },
  ];
  for (let shift = 0; shift < 3; shift += 1) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString("base64");
    const first = shift === 0 ? 0 : 1;
    const last = Math.floor((shift + bytes.length) / 3);
    const middle = encoded.slice(first * 4, last * 4);
    forms.push({ encoding: "base64", text: middle });
    forms.push({ encoding: "base64", text: middle.replaceAll("+", "-").replaceAll("/", "_") });
  }
  return forms;
}

/** The encodings of `canaries` found in `text` (binary data as latin1), one leak per canary and encoding. */
export function findIn(text: string, canaries: readonly Canary[], place: string, where: string): Leak[] {
  const leaks: Leak[] = [];
  for (const canary of canaries) {
    const seen = new Set<string>();
    for (const form of formsOf(canary.needle)) {
      if (!seen.has(form.encoding) && text.includes(form.text)) {
        seen.add(form.encoding);
        leaks.push({ canary: canary.label, place, where, encoding: form.encoding });
      }
    }
  }
  return leaks;
}

/**
 * `pg_dump` of a database, searched table by table and column by column: the COPY
 * blocks of the plain format name the columns, so a leak names its `table.column`.
 */
export async function searchPgDump(
  databaseUrl: string,
  canaries: readonly Canary[],
): Promise<{ leaks: Leak[]; searched: Searched }> {
  const { stdout } = await run(pgDumpPath(), ["--no-owner", "--no-privileges", "--dbname", databaseUrl], {
    maxBuffer: 512 * 1024 * 1024,
  });
  const leaks: Leak[] = [];
  let columns: string[] | undefined;
  let table = "";
  let rows = 0;
  for (const line of stdout.split("\n")) {
    const copy = /^COPY (\S+) \((.*)\) FROM stdin;$/.exec(line);
    if (copy) {
      table = (copy[1] ?? "").replace(/^public\./, "").replaceAll('"', "");
      columns = (copy[2] ?? "").split(", ").map((c) => c.replaceAll('"', ""));
      continue;
    }
    if (columns !== undefined && line === "\\.") {
      columns = undefined;
      continue;
    }
    if (columns === undefined) {
      leaks.push(...findIn(line, canaries, "postgres", "(schema)"));
      continue;
    }
    rows += 1;
    const values = line.split("\t");
    values.forEach((value, i) => {
      leaks.push(...findIn(value, canaries, "postgres", `${table}.${columns?.[i] ?? `#${i}`}`));
    });
  }
  return { leaks: dedupe(leaks), searched: { place: "postgres (pg_dump)", items: rows, bytes: stdout.length } };
}

function pgDumpPath(): string {
  return process.env.PG_DUMP ?? "pg_dump";
}

/** Every file under `dir` (a NATS store, a DATA_DIR), as bytes. */
export async function searchFiles(
  dir: string,
  canaries: readonly Canary[],
  place: string,
): Promise<{ leaks: Leak[]; searched: Searched }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const leaks: Leak[] = [];
  let files = 0;
  let bytes = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const content = await readFile(path).catch(() => undefined);
    if (content === undefined) continue;
    files += 1;
    bytes += content.length;
    leaks.push(...findIn(content.toString("latin1"), canaries, place, relative(dir, path)));
  }
  return { leaks: dedupe(leaks), searched: { place, items: files, bytes } };
}

/**
 * Every Redis key under `prefix`: its name, its DUMP (the serialised value of any
 * type) and its readable value (strings, hashes, lists, sets, sorted sets, streams).
 */
export async function searchRedis(
  redis: Redis,
  prefix: string,
  canaries: readonly Canary[],
): Promise<{ leaks: Leak[]; searched: Searched }> {
  const leaks: Leak[] = [];
  let keys = 0;
  let bytes = 0;
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", 500);
    cursor = next;
    for (const key of batch) {
      keys += 1;
      const where = key.slice(prefix.length);
      const dumped = (await redis.dumpBuffer(key)) ?? Buffer.alloc(0);
      const readable = JSON.stringify(await readableValue(redis, key));
      bytes += dumped.length;
      const text = `${key}\n${dumped.toString("latin1")}\n${readable}`;
      leaks.push(...findIn(text, canaries, "redis", where));
    }
  } while (cursor !== "0");
  return { leaks: dedupe(leaks), searched: { place: "redis keys", items: keys, bytes } };
}

async function readableValue(redis: Redis, key: string): Promise<unknown> {
  switch (await redis.type(key)) {
    case "string":
      return redis.get(key);
    case "hash":
      return redis.hgetall(key);
    case "list":
      return redis.lrange(key, 0, -1);
    case "set":
      return redis.smembers(key);
    case "zset":
      return redis.zrange(key, "0", "-1", "WITHSCORES");
    case "stream":
      return redis.xrange(key, "-", "+");
    default:
      return null;
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** Log lines (pino JSON): a leak names the line's `msg` and the field that holds the canary. */
export function searchLogs(
  lines: readonly string[],
  canaries: readonly Canary[],
): { leaks: Leak[]; searched: Searched } {
  const leaks: Leak[] = [];
  let bytes = 0;
  for (const line of lines) {
    bytes += line.length;
    const found = findIn(line, canaries, "log", "");
    if (found.length === 0) continue;
    let where = line.slice(0, 120);
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      const fields = Object.entries(parsed)
        .filter(([, value]) => findIn(JSON.stringify(value) ?? "", canaries, "", "").length > 0)
        .map(([key]) => key);
      where = `"${String(parsed.msg ?? "")}" field ${fields.join(",")}`;
    } catch {
      // not JSON: the line's beginning
    }
    leaks.push(...found.map((leak) => ({ ...leak, where })));
  }
  return { leaks: dedupe(leaks), searched: { place: "service log (debug)", items: lines.length, bytes } };
}

function dedupe(leaks: Leak[]): Leak[] {
  const byKey = new Map(leaks.map((leak) => [`${leak.canary}|${leak.place}|${leak.where}|${leak.encoding}`, leak]));
  return [...byKey.values()];
}

/** A readable report: every canary with where it was found (or "nowhere"), then what was searched. */
export function report(canaries: readonly Canary[], leaks: readonly Leak[], searched: readonly Searched[]): string {
  const lines = ["canary plaintext search", "  searched:"];
  for (const s of searched) lines.push(`    ${s.place}: ${s.items} items, ${s.bytes} bytes`);
  lines.push("  canaries:");
  for (const canary of canaries) {
    const found = leaks.filter((leak) => leak.canary === canary.label);
    const places =
      found.length === 0 ? "not found in clear" : found.map((l) => `${l.place}:${l.where} (${l.encoding})`).join("; ");
    lines.push(`    ${canary.label} = ${canary.needle}: ${places}`);
  }
  return lines.join("\n");
}
