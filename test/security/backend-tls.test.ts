import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { connect } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOrm } from "../../src/db/orm.ts";
import { NatsMessageBus } from "../../src/messaging/nats-message-bus.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { selfSignedCertificate } from "../support/test-certificate.ts";
import { freePort } from "../support/free-port.ts";

const logger = createLogger("silent");

/**
 * Issue #6, safety 2: TLS to PostgreSQL, NATS and Redis in production (README,
 * "Security"). The service passes what DATABASE_URL, NATS_URL and REDIS_URL ask for
 * through to the drivers: `sslmode=verify-full` reaches node-postgres (MikroORM alone
 * would drop it), `tls://` makes the NATS client insist on TLS, `rediss://` makes
 * ioredis use TLS. Our servers here speak plaintext, so a client that honours the
 * setting must fail; a NATS server of the test's own with a generated certificate
 * shows the verified connection working.
 */
let db: TestDatabase;
let dir: string;
let nats: ChildProcess | undefined;
let natsPort: number;
const defaultCas = tls.getCACertificates("default");

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), "backend-tls-"));
  await selfSignedCertificate(dir);
  natsPort = await freePort();
  nats = spawn(
    process.env.NATS_SERVER ?? "nats-server",
    [
      "-a",
      "127.0.0.1",
      "-p",
      String(natsPort),
      "--tls",
      "--tlscert",
      join(dir, "cert.pem"),
      "--tlskey",
      join(dir, "key.pem"),
    ],
    { stdio: "ignore" },
  );
  await waitForPort(natsPort);
}, 60_000);

afterAll(async () => {
  tls.setDefaultCACertificates(defaultCas);
  nats?.kill("SIGKILL");
  await db?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("TLS to the backing services", () => {
  it("PostgreSQL: sslmode=verify-full in DATABASE_URL reaches the driver (a plaintext server is refused)", async () => {
    const plain = await createOrm({ url: db.url, poolMax: 1 });
    try {
      expect(await plain.em.fork().execute("select 1 as one", [], "get")).toEqual({ one: 1 });
    } finally {
      await plain.close();
    }
    const url = new URL(db.url);
    url.searchParams.set("sslmode", "verify-full");
    const strict = await createOrm({ url: url.toString(), poolMax: 1 });
    try {
      await expect(strict.em.fork().execute("select 1", [], "get")).rejects.toThrow(/SSL/i);
    } finally {
      await strict.close();
    }
  });

  it("NATS: a tls:// NATS_URL connects only with TLS, verifying the server's certificate", async () => {
    // A plaintext server (the shared one) is refused rather than used in clear.
    await expect(
      NatsMessageBus.open(
        { url: "tls://127.0.0.1:4222", name: "tls-test", connectTimeoutMs: 2000, reconnectWaitMs: 100 },
        logger,
      ),
    ).rejects.toThrow();
    // A TLS server whose certificate the process does not trust is refused too.
    await expect(
      NatsMessageBus.open(
        { url: `tls://localhost:${natsPort}`, name: "tls-test", connectTimeoutMs: 2000, reconnectWaitMs: 100 },
        logger,
      ),
    ).rejects.toThrow();
    // Trusted (NODE_EXTRA_CA_CERTS in production; here the process's default CAs plus the test's).
    tls.setDefaultCACertificates([...defaultCas, await readFile(join(dir, "cert.pem"), "utf8")]);
    const bus = await NatsMessageBus.open(
      { url: `tls://localhost:${natsPort}`, name: "tls-test", connectTimeoutMs: 2000, reconnectWaitMs: 100 },
      logger,
    );
    try {
      const watcher = await connect({ servers: `tls://localhost:${natsPort}`, tls: {} });
      const received = new Promise<string>((resolve) => {
        watcher.subscribe("tls.test", { callback: (_, msg) => resolve(msg.string()) });
      });
      await watcher.flush();
      bus.publish("tls.test", new TextEncoder().encode("over tls"));
      expect(await received).toBe("over tls");
      await watcher.close();
    } finally {
      await bus.close();
      tls.setDefaultCACertificates(defaultCas);
    }
  });

  it("Redis: a rediss:// REDIS_URL makes the client use TLS (a plaintext server is refused)", async () => {
    const redis = new Redis("rediss://127.0.0.1:6379", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2000,
    });
    redis.on("error", () => undefined); // the refusal is what the test waits for
    try {
      await expect(redis.connect()).rejects.toThrow();
    } finally {
      redis.disconnect();
    }
  });
});

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.connect(port, "127.0.0.1");
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
