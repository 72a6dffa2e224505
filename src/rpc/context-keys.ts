import { createContextKey } from "@connectrpc/connect";
import type { Principal } from "../auth/principal.ts";

/**
 * Per-request values every handler can read from `context.values`, set by the call
 * pipeline (or the transport, for the peer address) whatever the transport.
 */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The authenticated caller; undefined for an anonymous call to an anonymous method. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/**
 * The patient a call acts on, as the access check resolved it from the request
 * (the policy's `patient_field`), and whether the caller acts as that patient's
 * guardian (a proxy). Undefined when the method names no patient.
 */
export interface ActingFor {
  readonly patientId: string;
  readonly proxy: boolean;
}
export const actingForKey = createContextKey<ActingFor | undefined>(undefined, { description: "acting for" });

/** The client's IP address as the server's socket saw it; for the audit log and rate limits. */
export const clientAddressKey = createContextKey<string>("", { description: "client address" });
