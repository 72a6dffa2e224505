import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** An Ed25519 key pair read from (or created as) a PKCS#8 PEM file. */
export interface Ed25519Key {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Reads an Ed25519 private key, or creates one when the file does not exist and
 * `create` is set (the embedded default keeps its dev keys under DATA_DIR/keys, so a
 * restart does not log everyone out). The file is written with mode 0600 and
 * exclusively (`wx`), so concurrent starts on one folder agree on one key.
 */
export async function loadEd25519Key(path: string, options: { create: boolean }): Promise<Ed25519Key> {
  const pem = await readOrCreate(path, options.create, () =>
    generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  );
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${path}: not an Ed25519 private key`);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Reads a 32-byte symmetric key stored as base64, or creates one (see loadEd25519Key). */
export async function loadSecretKey(path: string, options: { create: boolean }): Promise<Buffer> {
  const text = await readOrCreate(path, options.create, () => `${randomBytes(32).toString("base64")}\n`);
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== 32) throw new Error(`${path}: expected 32 bytes of base64`);
  return key;
}

async function readOrCreate(path: string, create: boolean, make: () => string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" || !create) throw error;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, make(), { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  return readFile(path, "utf8");
}
