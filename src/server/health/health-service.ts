import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthListResponseSchema,
} from "../../../gen/grpc/health/v1/health_pb.js";
import type { ServiceRegistration } from "../../rpc/call-pipeline.ts";
import type { HealthState } from "./health-state.ts";

export { HealthState, type ServingStatusName } from "./health-state.ts";

type CheckResponse = MessageInitShape<typeof HealthCheckResponseSchema>;

/**
 * grpc.health.v1.Health over the given state, for the call pipeline:
 * - Check answers the status of a service name, NOT_FOUND for a name never set;
 * - Watch sends the current status at once (SERVICE_UNKNOWN for a name never set,
 *   as the protocol asks, since the name may be registered later), then each change,
 *   until the client goes away;
 * - List answers every name with its status.
 */
export function healthRegistration(state: HealthState): ServiceRegistration<typeof Health> {
  return {
    service: Health,
    impl: {
      check(request) {
        const status = state.get(request.service);
        if (status === undefined) {
          throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
        }
        return { status };
      },
      watch(request, context) {
        return watchStatus(state, request, context);
      },
      list(): MessageInitShape<typeof HealthListResponseSchema> {
        const statuses: Record<string, CheckResponse> = {};
        for (const [service, status] of state.entries()) statuses[service] = { status };
        return { statuses };
      },
    },
  };
}

/**
 * Yields the current status, then every change, until `context.signal` aborts.
 * Only the latest status matters to a watcher, so changes that happen while the
 * client is slow to read collapse into one message instead of queueing without bound.
 */
async function* watchStatus(
  state: HealthState,
  request: HealthCheckRequest,
  context: HandlerContext,
): AsyncGenerator<CheckResponse> {
  const { signal } = context;
  let latest = state.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
  let pending = true;
  let wake: (() => void) | undefined;
  const unsubscribe = state.subscribe(request.service, (status) => {
    latest = status;
    pending = true;
    wake?.();
  });
  // Wakes the wait below when the client leaves, so the generator ends and the
  // listener is removed instead of waiting for a change that may never come.
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    while (!signal.aborted) {
      if (pending) {
        pending = false;
        yield { status: latest };
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    // Ending normally would tell the client OK. Say why instead: the deadline's
    // ConnectError, or UNAVAILABLE when the server drains, so the client re-watches
    // elsewhere. (A client that left never reads this.)
    const { reason } = signal;
    throw reason instanceof ConnectError ? reason : new ConnectError("the server is shutting down", Code.Unavailable);
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
