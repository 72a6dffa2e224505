import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";

/** A unary method, wrapped with the whole call pipeline (validation, errors, metrics). */
export type UnaryCall = (request: Message, context: HandlerContext) => Promise<Message>;

/** A server-streaming method, wrapped with the call pipeline. */
export type ServerStreamCall = (request: Message, context: HandlerContext) => AsyncIterable<Message>;

/** One callable method of one served service. */
export type RpcEntry =
  | {
      readonly path: string;
      readonly service: DescService;
      readonly method: DescMethod;
      readonly kind: "unary";
      readonly call: UnaryCall;
    }
  | {
      readonly path: string;
      readonly service: DescService;
      readonly method: DescMethod;
      readonly kind: "server_streaming";
      readonly call: ServerStreamCall;
    };

/**
 * Every method the server answers, keyed by its gRPC path (`/telemed.patient.v1.PatientService/GetPatient`).
 * Each transport (Connect router, the native gRPC path, REST transcoding) calls the same
 * entries, so a handler is written once whatever protocol carries it.
 */
export class RpcTable {
  readonly #byPath: ReadonlyMap<string, RpcEntry>;
  readonly #services: readonly DescService[];

  constructor(entries: readonly RpcEntry[]) {
    this.#byPath = new Map(entries.map((entry) => [entry.path, entry]));
    this.#services = [...new Set(entries.map((entry) => entry.service))];
  }

  /** The entry for a gRPC path, or undefined. */
  get(path: string): RpcEntry | undefined {
    return this.#byPath.get(path);
  }

  /** All entries, in registration order. */
  entries(): IterableIterator<RpcEntry> {
    return this.#byPath.values();
  }

  /** The served services, in registration order. */
  services(): readonly DescService[] {
    return this.#services;
  }
}

/** The gRPC path of a method: `/package.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}
