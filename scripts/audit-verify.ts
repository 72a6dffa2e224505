/**
 * `npm run audit:verify`: checks the tamper-evident audit log (RQ-PT004) of the
 * database at DATABASE_URL: the hash chain entry by entry, and the newest signed
 * checkpoint (its signature, and that the chain still reaches it). The same check as
 * the admin RPC VerifyAuditChain.
 *
 * Environment:
 *   DATABASE_URL            required; a role that may SELECT the audit tables is enough
 *   AUDIT_VERIFY_KEY_FILE   PEM file with the checkpoint signers' Ed25519 public key(s)
 *   AUDIT_SIGNING_KEY_FILE  or the service's PKCS#8 PEM private key (its public half is used)
 * Options: --start <sequence> (the entry before it is trusted), --max <entries>.
 *
 * Prints one line (sequences, hashes and the kind of break: never the content of an
 * entry). Exit codes: 0 intact, 1 broken, 2 bad configuration or the check could not run.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { AuditChainVerification_Break } from "../gen/telemed/patient/v1/audit_pb.js";
import { createOrm } from "../src/db/orm.ts";
import { auditKeyId } from "../src/audit/audit-checkpointer.ts";
import { verifyAuditChain } from "../src/audit/audit-verifier.ts";

class UsageError extends Error {}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { start: { type: "string" }, max: { type: "string" } } });
  const url = process.env.DATABASE_URL;
  if (url === undefined || url === "") throw new UsageError("DATABASE_URL is required");
  const startSequence = count("--start", values.start);
  const maxEntries = count("--max", values.max);
  const publicKeys = await loadPublicKeys();
  const orm = await createOrm({ url, poolMax: 1 });
  try {
    const result = await verifyAuditChain(orm.em.fork(), publicKeys, { startSequence, maxEntries });
    const checkpoint =
      result.checkpointSequence === 0n
        ? "no checkpoint"
        : `checkpoint ${result.checkpointSequence} of ${result.checkpointTime?.toISOString()}`;
    if (result.intact) {
      process.stdout.write(
        `audit chain intact: ${result.entriesChecked} entries checked, head ${result.headSequence} ${result.headHash}, ${checkpoint}\n`,
      );
      return 0;
    }
    process.stdout.write(
      `audit chain BROKEN at sequence ${result.firstBrokenSequence}: ` +
        `${AuditChainVerification_Break[result.breakKind]} (${result.entriesChecked} entries checked, ` +
        `head ${result.headSequence}, ${checkpoint})\n`,
    );
    return 1;
  } finally {
    await orm.close();
  }
}

/** The verify key file's public keys (one or more PEM blocks), and the signing key's public half, by key id. */
async function loadPublicKeys(): Promise<Map<string, KeyObject>> {
  const keys: KeyObject[] = [];
  const verifyFile = process.env.AUDIT_VERIFY_KEY_FILE;
  const signingFile = process.env.AUDIT_SIGNING_KEY_FILE;
  if (!verifyFile && !signingFile) {
    throw new UsageError("set AUDIT_VERIFY_KEY_FILE (public key PEM) or AUDIT_SIGNING_KEY_FILE (private key PEM)");
  }
  if (verifyFile) {
    const pem = await readKeyFile("AUDIT_VERIFY_KEY_FILE", verifyFile);
    const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
    if (blocks.length === 0) throw new UsageError("AUDIT_VERIFY_KEY_FILE holds no PEM public key");
    for (const block of blocks) keys.push(createPublicKey(block));
  }
  if (signingFile) {
    keys.push(createPublicKey(createPrivateKey(await readKeyFile("AUDIT_SIGNING_KEY_FILE", signingFile))));
  }
  const byId = new Map<string, KeyObject>();
  for (const key of keys) {
    if (key.asymmetricKeyType !== "ed25519") throw new UsageError("audit checkpoint keys must be Ed25519");
    byId.set(auditKeyId(key), key);
  }
  return byId;
}

async function readKeyFile(variable: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

function count(option: string, text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,18}$/.test(text)) throw new UsageError(`${option} must be a whole number`);
  return BigInt(text);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Database errors can quote SQL: print only the kind of failure.
    const message = error instanceof UsageError ? error.message : `the check could not run (${errorName(error)})`;
    process.stderr.write(`audit:verify: ${message}\n`);
    process.exitCode = 2;
  },
);

function errorName(error: unknown): string {
  if (error instanceof Error) return (error as { code?: string }).code ?? error.name;
  return "unknown error";
}
