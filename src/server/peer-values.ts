import { type ContextValues, createContextValues } from "@connectrpc/connect";
import { clientAddressKey } from "../rpc/context-keys.ts";

/**
 * The context values every transport starts a call with: the client's address as the
 * socket saw it (for the audit log and per-address login limits). Behind a proxy this
 * is the proxy's address; X-Forwarded-For is not trusted, since any client can send it.
 */
export function peerValues(req: { socket?: { remoteAddress?: string | undefined } | null }): ContextValues {
  return addressValues(req.socket?.remoteAddress ?? "");
}

/** The same values, from an address the transport already read (the native paths). */
export function addressValues(remoteAddress: string): ContextValues {
  return createContextValues().set(clientAddressKey, remoteAddress);
}
