import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A self-signed certificate for `localhost` and 127.0.0.1 (EC P-256, one day), made
 * with openssl into `dir` as `cert.pem` and `key.pem`; it is its own CA for clients.
 */
export async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  return { certFile, keyFile };
}
