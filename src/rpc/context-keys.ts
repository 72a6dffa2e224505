import { createContextKey } from "@connectrpc/connect";

/**
 * Per-request values every handler can read from `context.values`, set by the call
 * pipeline whatever the transport. Later layers (authentication, the per-request
 * EntityManager) add their keys here.
 */
export const requestIdKey = createContextKey<string>("", { description: "request id" });
