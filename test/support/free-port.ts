import { pickPort } from "../../src/db/local-port.ts";

/** A free TCP port on 127.0.0.1 for a server of a test's own (nats-server, PostgreSQL, a service child). */
export function freePort(): Promise<number> {
  return pickPort(0, true);
}
