import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { PatientService } from "../../../gen/telemed/patient/v1/patient_service_pb.js";
import { healthRegistration } from "../../../src/server/health/health-service.ts";
import { HealthState } from "../../../src/server/health/health-state.ts";
import { registerReflection } from "../../../src/server/reflection/reflection-service.ts";

/** A listening h2c server and what tests need from it. */
export interface TestServer {
  readonly port: number;
  readonly baseUrl: string;
  readonly health: HealthState;
  close(): Promise<void>;
}

/**
 * A real cleartext HTTP/2 server on an ephemeral port serving PatientService (with no
 * methods implemented: reflection only needs its schema), Health and reflection,
 * registered on a Connect router as the service's own server does.
 */
export async function startReflectionTestServer(): Promise<TestServer> {
  const health = new HealthState();
  const healthService = healthRegistration(health);
  const routes = (router: ConnectRouter) => {
    router.service(PatientService, {});
    router.service(healthService.service, healthService.impl);
    registerReflection(router, [PatientService, healthService.service]);
  };
  const server = http2.createServer(connectNodeAdapter({ routes, readMaxBytes: 1024 * 1024 }));
  // http2 `close()` waits for open sessions; clients keep theirs open, so track and close them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    health,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const session of sessions) session.close();
      }),
  };
}
