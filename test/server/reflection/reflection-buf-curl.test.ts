import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReflectionTestServer, type TestServer } from "./reflection-test-server.ts";

const run = promisify(execFile);
// The binary itself, not `npx buf`: npx adds about a second of start-up per call.
const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));

/** Runs `buf curl` over gRPC with prior-knowledge HTTP/2, the way an operator would. */
async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 30_000,
  });
  return stdout;
}

describe("server reflection with buf curl (no local schema)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startReflectionTestServer();
  });
  afterAll(() => server.close());

  it("lists every served service, the reflection services included", async () => {
    const listed = (await bufCurl("--list-services", server.baseUrl)).trim().split("\n").sort();
    expect(listed).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "telemed.patient.v1.PatientService",
    ]);
  });

  it("lists every method, which needs each service's file and its imports", async () => {
    // With reflection, --list-methods takes the base URL too (a service path there is a 404).
    const listed = (await bufCurl("--list-methods", server.baseUrl)).trim().split("\n");
    expect(listed).toContain("telemed.patient.v1.PatientService/GetPatient");
    expect(listed).toContain("grpc.health.v1.Health/Watch");
  });

  it("calls Health/Check with the schema from reflection v1", async () => {
    const out = await bufCurl(`${server.baseUrl}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  });

  it("calls Health/Check with the schema from reflection v1alpha", async () => {
    const out = await bufCurl("--reflect-protocol", "grpc-v1alpha", `${server.baseUrl}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  });

  it("reports NOT_FOUND from Check for an unknown service name", async () => {
    const failure = await bufCurl(
      "-d",
      '{"service":"no.such.Service"}',
      `${server.baseUrl}/grpc.health.v1.Health/Check`,
    ).then(
      () => undefined,
      (error: { stderr: string }) => error,
    );
    expect(failure?.stderr).toMatch(/not_found/i);
  });
});
