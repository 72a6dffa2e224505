import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { DescriptorIndex } from "./descriptor-index.ts";
import { reflectionStream } from "./reflection-stream.ts";

/** The reflection services this module serves, for callers that list what the server answers. */
export const reflectionServices: readonly DescService[] = [ServerReflectionV1, ServerReflectionV1alpha];

/**
 * Serves gRPC server reflection on `router`, in both versions clients speak: v1, and
 * v1alpha, which older tools still ask for (and `buf curl` falls back to).
 * `services` are the services the server answers; the reflection services are added
 * to them, so `list_services` names everything a client can call.
 *
 * Registered on the Connect router directly rather than through the call pipeline:
 * the pipeline handles unary and server-streaming calls, reflection is bidirectional,
 * and it exposes only schemas, never data.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const index = new DescriptorIndex([...services, ...reflectionServices]);
  router.service(ServerReflectionV1, {
    serverReflectionInfo: (requests) => reflectionStream(index, requests),
  });
  router.service(ServerReflectionV1alpha, {
    serverReflectionInfo: (requests) => reflectionStream(index, requests),
  });
}
