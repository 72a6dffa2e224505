import { Code, ConnectError, createClient, type Client, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../../gen/grpc/health/v1/health_pb.js";
import { healthRegistration } from "../../../src/server/health/health-service.ts";
import { HealthState } from "../../../src/server/health/health-state.ts";

/** An h2c server on an ephemeral port serving only Health over `state`. */
async function startHealthServer(state: HealthState, shutdownSignal?: AbortSignal) {
  const { service, impl } = healthRegistration(state);
  const routes = (router: ConnectRouter) => router.service(service, impl);
  const server = http2.createServer(connectNodeAdapter({ routes, shutdownSignal }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.close();
      }),
  };
}

/** Reads a Watch stream message by message, so a test can act between messages. */
function reader(stream: AsyncIterable<HealthCheckResponse>) {
  const iterator = stream[Symbol.asyncIterator]();
  return async (): Promise<ServingStatus | undefined> => (await iterator.next()).value?.status;
}

describe("grpc.health.v1.Health over the Connect protocol", () => {
  const patients = "telemed.patient.v1.PatientService";
  let state: HealthState;
  let server: Awaited<ReturnType<typeof startHealthServer>>;
  let client: Client<typeof Health>;
  beforeAll(async () => {
    state = new HealthState();
    state.set(patients, ServingStatus.SERVING);
    server = await startHealthServer(state);
    client = createClient(Health, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }));
  });
  afterAll(() => server.close());

  it("Check answers SERVING for the server and for a registered service", async () => {
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: patients })).status).toBe(ServingStatus.SERVING);
  });

  it("Check answers NOT_FOUND for a service name never registered", async () => {
    const error = await client.check({ service: "no.such.Service" }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("List answers every name with its status", async () => {
    const { statuses } = await client.list({});
    expect(statuses[""]?.status).toBe(ServingStatus.SERVING);
    expect(statuses[patients]?.status).toBe(ServingStatus.SERVING);
  });

  it("Watch sends the current status, then a change, and lets go when the client leaves", async () => {
    const name = `telemed.watch.${crypto.randomUUID()}`;
    state.set(name, ServingStatus.SERVING);
    const abort = new AbortController();
    const next = reader(client.watch({ service: name }, { signal: abort.signal }));
    expect(await next()).toBe(ServingStatus.SERVING);
    expect(state.listenerCount).toBe(1);
    state.set(name, ServingStatus.NOT_SERVING);
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    abort.abort();
    await vi.waitFor(() => expect(state.listenerCount).toBe(0), { timeout: 5_000 });
  });

  it("Watch sends SERVICE_UNKNOWN for an unknown name, then the status once it is set", async () => {
    const name = `telemed.later.${crypto.randomUUID()}`;
    const abort = new AbortController();
    const next = reader(client.watch({ service: name }, { signal: abort.signal }));
    expect(await next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    state.set(name, ServingStatus.SERVING);
    expect(await next()).toBe(ServingStatus.SERVING);
    abort.abort();
    await vi.waitFor(() => expect(state.listenerCount).toBe(0), { timeout: 5_000 });
  });

  it("Watch ends with DEADLINE_EXCEEDED at the client's deadline, not with OK", async () => {
    const stream = client.watch({ service: patients }, { timeoutMs: 300 });
    const statuses: ServingStatus[] = [];
    const error = await (async () => {
      for await (const response of stream) statuses.push(response.status);
    })().catch((e: unknown) => ConnectError.from(e));
    expect(statuses).toEqual([ServingStatus.SERVING]);
    expect(error?.code).toBe(Code.DeadlineExceeded);
    await vi.waitFor(() => expect(state.listenerCount).toBe(0), { timeout: 5_000 });
  });

  it("shutdown tells watchers NOT_SERVING, then draining ends the watch with UNAVAILABLE", async () => {
    const separate = new HealthState();
    const draining = new AbortController();
    const other = await startHealthServer(separate, draining.signal);
    try {
      const otherClient = createClient(Health, createConnectTransport({ baseUrl: other.baseUrl, httpVersion: "2" }));
      const abort = new AbortController();
      const next = reader(otherClient.watch({ service: "" }, { signal: abort.signal }));
      expect(await next()).toBe(ServingStatus.SERVING);
      separate.shutdown();
      expect(await next()).toBe(ServingStatus.NOT_SERVING);
      expect((await otherClient.check({ service: "" })).status).toBe(ServingStatus.NOT_SERVING);
      draining.abort();
      const error = await next().catch((e: unknown) => ConnectError.from(e));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      abort.abort();
      await vi.waitFor(() => expect(separate.listenerCount).toBe(0), { timeout: 5_000 });
    } finally {
      await other.close();
    }
  });
});
