import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { failChild, sendToParent, serveParent } from "./child-ipc.ts";
import { EchoService } from "./echo-schema.ts";

/**
 * Child process: a bare connect-node server (HTTP/2 cleartext, prior knowledge) with
 * one unary echo method, answering gRPC, gRPC-Web and Connect (JSON and binary).
 * The baseline for GetPatient over Connect JSON, and the reference point showing
 * what connect-node's gRPC costs against grpc-js.
 */
async function main(): Promise<void> {
  let ok = 0;
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.rpc(
        EchoService.methods[0] as never,
        ((request: unknown) => {
          ok++;
          return request;
        }) as never,
      );
    },
    readMaxBytes: 1024 * 1024,
  });
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  serveParent(
    () => ({ ok, failed: 0 }),
    () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.close();
        server.close(() => resolve());
      }),
  );
  sendToParent({ type: "ready", port: (server.address() as AddressInfo).port });
}

main().catch(failChild);
