import { createHash, createPublicKey, type KeyObject, sign } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "../db/orm.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { checkpointMessage, isoMicros } from "./audit-chain.ts";

/** How often the head is checkpointed when it moved, by default. */
export const defaultCheckpointIntervalMs = 60_000;

/** What configures an AuditCheckpointer. */
export interface AuditCheckpointerOptions {
  /** Ed25519 private key that signs checkpoints (AUDIT_SIGNING_KEY_FILE, PKCS#8 PEM). */
  readonly signingKey: KeyObject;
  /** Stored with each checkpoint so verifiers pick the public key; `auditKeyId(public key)` by default. */
  readonly keyId?: string;
  readonly clock?: Clock;
  /** Checkpoint every this many ms when the head moved; 60 000 by default, 0 for none (only `checkpointNow` and `close`). */
  readonly intervalMs?: number;
  /** Where failures of interval checkpoints go (a logger); they are retried on the next tick. */
  readonly onError?: (error: unknown) => void;
}

/** A signed checkpoint of the chain head. */
export interface AuditCheckpoint {
  readonly sequence: bigint;
  /** The head's hash, lowercase hex. */
  readonly hash: string;
  /** `isoMicros` of the signing time, as signed. */
  readonly signedAt: string;
  readonly keyId: string;
  readonly signature: Buffer;
}

type HeadRow = { readonly sequence: string; readonly hash: string; readonly checkpointed: string | null };

/**
 * The key id of a public key: the first 16 bytes of SHA-256 over its SPKI DER, in
 * hex. Derived from the key itself, so `npm run audit:verify` needs only the key file.
 */
export function auditKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: "der", type: "spki" });
  return createHash("sha256").update(der).digest("hex").slice(0, 32);
}

/**
 * Signs the chain head into `audit_checkpoints`: every `intervalMs` when the head
 * moved since the newest checkpoint, on `checkpointNow`, and once more on `close`.
 * A cut tail then shows: the chain no longer reaches the newest signed checkpoint
 * (audit-verifier.ts). The timer starts with the constructor and does not keep the
 * process alive.
 */
export class AuditCheckpointer {
  readonly #em: () => EntityManager;
  readonly #signingKey: KeyObject;
  readonly #keyId: string;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(source: Orm | (() => EntityManager), options: AuditCheckpointerOptions) {
    if (options.signingKey.type !== "private" || options.signingKey.asymmetricKeyType !== "ed25519") {
      throw new TypeError("the audit signing key must be an Ed25519 private key");
    }
    this.#em = typeof source === "function" ? source : () => source.em.fork();
    this.#signingKey = options.signingKey;
    this.#keyId = options.keyId ?? auditKeyId(createPublicKey(options.signingKey));
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = options.intervalMs ?? defaultCheckpointIntervalMs;
    this.#onError = options.onError ?? (() => undefined);
    this.#arm();
  }

  /** The key id written with each checkpoint. */
  get keyId(): string {
    return this.#keyId;
  }

  /**
   * Signs the current head, unless it is empty or already checkpointed; returns the
   * new checkpoint, or undefined when there was nothing new. Calls take turns.
   */
  checkpointNow(): Promise<AuditCheckpoint | undefined> {
    const run = this.#running.then(
      () => this.#checkpoint(),
      () => this.#checkpoint(),
    );
    this.#running = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer, waits for a checkpoint in progress, and checkpoints the head one last time. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.checkpointNow();
  }

  #arm(): void {
    if (this.#intervalMs <= 0 || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.checkpointNow()
        .catch(this.#onError)
        .finally(() => this.#arm());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #checkpoint(): Promise<AuditCheckpoint | undefined> {
    const em = this.#em();
    const head: HeadRow | undefined = await em.execute<HeadRow>(
      `select "sequence"::text as "sequence", encode("hash", 'hex') as "hash", ` +
        `(select max("sequence")::text from "audit_checkpoints") as "checkpointed" ` +
        `from "audit_chain_head" where "id" = 1`,
      [],
      "get",
    );
    if (head === undefined) throw new Error("audit_chain_head has no row: are the migrations applied?");
    const sequence = BigInt(head.sequence);
    if (sequence === 0n || (head.checkpointed !== null && BigInt(head.checkpointed) >= sequence)) return undefined;
    const signedAt = isoMicros(this.#clock.now());
    const signature = sign(null, checkpointMessage(sequence, head.hash, signedAt), this.#signingKey);
    // Another replica may checkpoint the same head at the same moment: one row per sequence.
    const result = await em.execute<{ affectedRows: number }>(
      `insert into "audit_checkpoints" ("sequence", "hash", "signed_at", "key_id", "signature") ` +
        `values (?, decode(?, 'hex'), ?, ?, decode(?, 'hex')) on conflict ("sequence") do nothing`,
      [head.sequence, head.hash, signedAt, this.#keyId, signature.toString("hex")],
      "run",
    );
    if (result.affectedRows === 0) return undefined;
    return { sequence, hash: head.hash, signedAt, keyId: this.#keyId, signature };
  }
}
