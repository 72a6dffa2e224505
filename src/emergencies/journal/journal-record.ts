import { crc32 } from "node:zlib";
import type { AuditEntryDraft } from "../../audit/audit-entry.ts";
import type { EmergencyKind, Priority, Severity } from "../emergency.ts";
import type { StoredLocation } from "../emergency-record.ts";

/**
 * An emergency accepted while PostgreSQL was unreachable: everything its row, its
 * request id, its first timeline entry, its outbox row and its audit entry need, so
 * the replay writes exactly what the normal path would have written.
 */
export interface JournalledEmergency {
  /** UUIDv7, made before the first attempt: the same id in the journal, on the lane and in the row. */
  readonly id: string;
  readonly patientId: string;
  readonly requestId: string;
  readonly kind: EmergencyKind;
  readonly severity: Severity;
  readonly priority: Priority;
  readonly description: string;
  readonly location: StoredLocation;
  readonly callbackPhone: string;
  readonly requestedBy: string;
  readonly requestedByRole: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** The EmergencyRequested message (base64), published with `Nats-Msg-Id` = `id`. */
  readonly payload: string;
  /** The call's audit entry, written at replay. */
  readonly audit: AuditEntryDraft;
}

/** One line of the journal. */
export type JournalEntry =
  | { readonly t: "accepted"; readonly emergency: JournalledEmergency }
  /** JetStream acknowledged the dispatch message (ISO 8601 time of the PubAck). */
  | { readonly t: "published"; readonly id: string; readonly at: string }
  /** The row is in PostgreSQL; the entry needs nothing more. */
  | { readonly t: "replayed"; readonly id: string };

/** Seals each record's body (health data: description, location) before it reaches the disk. */
export interface JournalCodec {
  seal(plain: string, context: string): string;
  open(sealed: string, context: string): string;
}

/** Authenticated context of every sealed record, so no other sealed value opens as one. */
const sealContext = "emergency-journal:v1";

/**
 * `<crc32 of the rest, 8 hex digits> <sealed JSON>\n`. The checksum finds a torn or
 * damaged line without the key; the seal (AES-256-GCM) also authenticates it.
 */
export function encodeEntry(entry: JournalEntry, codec: JournalCodec): string {
  const body = codec.seal(JSON.stringify(entry), sealContext);
  return `${checksum(body)} ${body}\n`;
}

/** The entry of one line (without its newline); undefined when it is torn or damaged. */
export function decodeEntry(line: string, codec: JournalCodec): JournalEntry | undefined {
  if (line.length < 10 || line[8] !== " ") return undefined;
  const body = line.slice(9);
  if (line.slice(0, 8) !== checksum(body)) return undefined;
  try {
    const entry = JSON.parse(codec.open(body, sealContext)) as JournalEntry;
    return isEntry(entry) ? entry : undefined;
  } catch {
    return undefined;
  }
}

function checksum(body: string): string {
  return crc32(body).toString(16).padStart(8, "0");
}

function isEntry(entry: JournalEntry): boolean {
  if (typeof entry !== "object" || entry === null) return false;
  if (entry.t === "accepted") return typeof entry.emergency?.id === "string";
  return (entry.t === "published" || entry.t === "replayed") && typeof entry.id === "string";
}
