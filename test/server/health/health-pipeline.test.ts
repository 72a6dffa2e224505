import { Code, ConnectError, createClient, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";
import { AccessControl } from "../../../src/auth/access-control.ts";
import { invalidToken } from "../../../src/auth/token-verifier.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { RpcMetrics } from "../../../src/observability/metrics.ts";
import { buildRpcTable } from "../../../src/rpc/call-pipeline.ts";
import { RequestValidator } from "../../../src/rpc/request-validation.ts";
import { healthRegistration, HealthState } from "../../../src/server/health/health-service.ts";

/**
 * Health as the server deploys it: wrapped by the call pipeline (request id,
 * validation, error translation, metrics) and routed per method, here over gRPC.
 */
describe("Health through the call pipeline", () => {
  const state = new HealthState();
  const draining = new AbortController();
  const metrics = new RpcMetrics({ collectProcessMetrics: false });
  let server: http2.Http2Server;
  let client: ReturnType<typeof createClient<typeof Health>>;
  beforeAll(async () => {
    const table = buildRpcTable([healthRegistration(state)], {
      logger: createLogger("silent"),
      metrics,
      validator: new RequestValidator(),
      // Health is anonymous: no token is ever verified here, and nothing is audited.
      access: new AccessControl(
        {
          authenticate: () => {
            throw invalidToken();
          },
        },
        { grantsFor: async () => new Set() },
      ),
      audit: undefined,
    });
    const routes = (router: ConnectRouter) => {
      for (const entry of table.entries()) router.rpc(entry.method as never, entry.call as never);
    };
    server = http2.createServer(connectNodeAdapter({ routes, shutdownSignal: draining.signal }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    client = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("answers Check, NOT_FOUND keeping its code through error translation", async () => {
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    const error = await client.check({ service: "unknown" }).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("streams Watch, and a drain ends it with UNAVAILABLE rather than INTERNAL", async () => {
    const iterator = client.watch({ service: "" })[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.status).toBe(ServingStatus.SERVING);
    state.shutdown();
    expect((await iterator.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
    draining.abort();
    const error = await iterator.next().catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect(state.listenerCount).toBe(0);
    const { body } = await metrics.render();
    expect(body).toMatch(/rpc_server_handled_total\{method="Watch",code="Unavailable",protocol="grpc"\} 1/);
  });
});
