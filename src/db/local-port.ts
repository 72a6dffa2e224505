import { createServer } from "node:net";

/**
 * A TCP port on 127.0.0.1 to start a server on: `preferred` if it is free, else (when
 * `fallback` is true, or `preferred` is 0) one the operating system picks. Another
 * process can still take the port before our server binds it; the caller's start then
 * fails with PostgreSQL's "could not bind" message.
 */
export async function pickPort(preferred: number, fallback: boolean): Promise<number> {
  if (preferred !== 0) {
    const free = await tryListen(preferred);
    if (free !== undefined) return free;
    if (!fallback) throw new Error(`Port ${preferred} on 127.0.0.1 is in use.`);
  }
  const any = await tryListen(0);
  if (any === undefined) throw new Error("No free TCP port on 127.0.0.1.");
  return any;
}

/** Binds and releases `port`; the bound port, or undefined when it is taken. */
function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(undefined));
    probe.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      const address = probe.address();
      const bound = typeof address === "object" && address !== null ? address.port : undefined;
      probe.close(() => resolve(bound));
    });
  });
}
