import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type BenchContext, type BenchTarget, serverSpec } from "./bench-context.ts";
import { EchoMessageSchema, echoPath, echoText } from "./echo-schema.ts";
import { grpcFrame } from "./grpc-frame.ts";
import type { H2loadTarget } from "./h2load.ts";
import { measureServerWithH2load } from "./h2load-target.ts";
import { measureServerWithDriver } from "./driver-target.ts";
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

/** The echo under the bench's driver, verified first with the same bytes h2load would send. */
function echoWithDriver(protocol: "grpc" | "connect") {
  return async (port: number) => {
    const target = await (protocol === "grpc" ? grpcEcho : jsonEcho)(port);
    return {
      path: echoPath,
      protocol,
      bodies: { kind: "rotate" as const, bodies: [Buffer.from(target.body).toString("base64")] },
      checks: ["verified one request with the exact driver bytes"],
    };
  };
}

/**
 * The bare echo baselines: grpc-js over gRPC, connect-node over gRPC and over
 * Connect JSON, under h2load; and grpc-js and connect-node JSON again under the
 * bench's driver, the baselines of the many-patient GetPatient targets (a ratio
 * compares two servers under the same load generator).
 */
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
  {
    id: "grpc-js-echo-driver",
    label: "bare @grpc/grpc-js echo",
    via: "gRPC, bench driver",
    run: (context: BenchContext) =>
      measureServerWithDriver(
        context,
        serverSpec(context, "grpc-js-echo-driver", { script: "grpc-js-echo-server.ts" }),
        echoWithDriver("grpc"),
      ),
  },
  {
    id: "connect-echo-json-driver",
    label: "bare connect-node echo",
    via: "Connect JSON (h2c), bench driver",
    run: (context: BenchContext) =>
      measureServerWithDriver(
        context,
        serverSpec(context, "connect-echo-json-driver", { script: "connect-echo-server.ts" }),
        echoWithDriver("connect"),
      ),
  },
];
