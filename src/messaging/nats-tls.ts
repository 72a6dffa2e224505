import type { ConnectionOptions } from "@nats-io/transport-node";

/**
 * The TLS part of a NATS connection's options for NATS_URL. nats.js upgrades to TLS
 * only when the server offers it and ignores a `tls://` scheme, so a server (or
 * anything answering in its place) that offers no TLS would get the connection in
 * clear. With `tls://` the client insists: `tls: {}` makes the connect fail unless the
 * server does TLS with a certificate that verifies against Node's trust store (add a
 * private CA with NODE_EXTRA_CA_CERTS) for the URL's host name.
 */
export function natsTlsOptions(url: string): Pick<ConnectionOptions, "tls"> {
  return url.trim().toLowerCase().startsWith("tls://") ? { tls: {} } : {};
}
