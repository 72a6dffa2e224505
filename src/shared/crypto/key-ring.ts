import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** Key-encryption keys by id, and the id of the one that wraps new data keys. */
export interface KeyRing {
  readonly currentKeyId: string;
  /** 32-byte AES-256 keys by id. */
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

const keyIdPattern = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Parses a key ring file: one key per line, `<key id>=<32 bytes in base64>`; blank
 * lines and lines starting with `#` are ignored. The current key is `currentKeyId`
 * when given, else the last key in the file (so rotating is: append a line, restart,
 * or name the new id). Throws with one line per problem; never echoes a key.
 */
export function parseKeyRing(text: string, source: string, currentKeyId?: string): KeyRing {
  const keys = new Map<string, Uint8Array>();
  const problems: string[] = [];
  let last: string | undefined;
  for (const [index, rawLine] of text.split("\n").entries()) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const separator = line.indexOf("=");
    const id = separator === -1 ? "" : line.slice(0, separator).trim();
    const key = Buffer.from(line.slice(separator + 1).trim(), "base64");
    if (!keyIdPattern.test(id)) problems.push(`line ${index + 1}: the key id must match ${keyIdPattern}`);
    else if (key.length !== 32) problems.push(`line ${index + 1}: the key must be 32 bytes of base64`);
    else if (keys.has(id)) problems.push(`line ${index + 1}: key id "${id}" appears twice`);
    else {
      keys.set(id, key);
      last = id;
    }
  }
  const current = currentKeyId ?? last;
  if (current === undefined) problems.push("no key in the file");
  else if (!keys.has(current)) problems.push(`no key "${current}" in the file (the current key id)`);
  if (problems.length > 0) throw new Error(`${source}: ${problems.join("; ")}`);
  return Object.freeze({ currentKeyId: current as string, keys });
}

/**
 * Reads a key ring file, or (when `create` is set and the file does not exist: the
 * embedded default) creates one with a single generated key. The file is written
 * with mode 0600 and exclusively, so concurrent starts on one DATA_DIR agree on one
 * key; a lost dev key makes what it protected unreadable, so it is kept, not regenerated.
 */
export async function loadKeyRing(
  path: string,
  options: { create: boolean; currentKeyId?: string | undefined },
): Promise<KeyRing> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" || !options.create) throw error;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const generated =
      "# Key-encryption keys of field encryption, generated for the embedded mode (development only).\n" +
      `dev-${randomBytes(4).toString("hex")}=${randomBytes(32).toString("base64")}\n`;
    try {
      await writeFile(path, generated, { mode: 0o600, flag: "wx" });
    } catch (writeError) {
      if ((writeError as NodeJS.ErrnoException).code !== "EEXIST") throw writeError;
    }
    text = await readFile(path, "utf8");
  }
  return parseKeyRing(text, path, options.currentKeyId);
}
