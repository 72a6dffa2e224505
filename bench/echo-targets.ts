import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type BenchContext, type BenchTarget, serverSpec } from "./bench-context.ts";
import { EchoMessageSchema, echoPath, echoText } from "./echo-schema.ts";
import { grpcFrame } from "./grpc-frame.ts";
import type { H2loadTarget } from "./h2load.ts";
import { measureServerWithH2load } from "./h2load-target.ts";
import { connectJsonHeaders, grpcHeaders, verifyGrpcTarget, verifyJsonTarget } from "./verify-request.ts";

const echoFrame = grpcFrame(toBinary(EchoMessageSchema, create(EchoMessageSchema, { text: echoText })));

async function grpcEcho(port: number): Promise<H2loadTarget> {
  const target = { url: `http://127.0.0.1:${port}${echoPath}`, body: echoFrame, headers: grpcHeaders };
  const answer = fromBinary(EchoMessageSchema, await verifyGrpcTarget(target));
  if ((answer as unknown as { text: string }).text !== echoText) throw new Error("the gRPC echo answered another text");
  return target;
}

async function jsonEcho(port: number): Promise<H2loadTarget> {
  const body = Buffer.from(JSON.stringify({ text: echoText }));
  const target = { url: `http://127.0.0.1:${port}${echoPath}`, body, headers: connectJsonHeaders };
  const answer = (await verifyJsonTarget(target)) as { text?: string };
  if (answer.text !== echoText) throw new Error(`the Connect JSON echo answered ${JSON.stringify(answer)}`);
  return target;
}

/** The bare echo baselines: grpc-js over gRPC, connect-node over gRPC and over Connect JSON. */
export const echoTargets: readonly BenchTarget[] = [
  {
    id: "grpc-js-echo",
    label: "bare @grpc/grpc-js echo",
    via: "gRPC, h2load",
    run: (context: BenchContext) =>
      measureServerWithH2load(
        context,
        serverSpec(context, "grpc-js-echo", { script: "grpc-js-echo-server.ts" }),
        grpcEcho,
      ),
  },
  {
    id: "connect-echo-grpc",
    label: "bare connect-node echo",
    via: "gRPC (h2c), h2load",
    run: (context: BenchContext) =>
      measureServerWithH2load(
        context,
        serverSpec(context, "connect-echo-grpc", { script: "connect-echo-server.ts" }),
        grpcEcho,
      ),
  },
  {
    id: "connect-echo-json",
    label: "bare connect-node echo",
    via: "Connect JSON (h2c), h2load",
    run: (context: BenchContext) =>
      measureServerWithH2load(
        context,
        serverSpec(context, "connect-echo-json", { script: "connect-echo-server.ts" }),
        jsonEcho,
      ),
  },
];
