import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The metric children of one method and protocol. */
interface Series {
  readonly latency: { observe(value: number): void };
  /** By status code name. */
  readonly calls: Map<string, { inc(): void }>;
}

/**
 * Prometheus metrics of one server instance. Each instance has its own registry
 * (no global default), so tests can run several servers in one process.
 * Labels are method names and status codes only: never ids or health data.
 */
export class RpcMetrics {
  readonly registry = new Registry();
  readonly #calls: Counter<"method" | "code" | "protocol">;
  readonly #latency: Histogram<"method" | "protocol">;
  readonly #children = new Map<string, Map<string, Series>>();

  constructor(options: { collectProcessMetrics: boolean }) {
    if (options.collectProcessMetrics) collectDefaultMetrics({ register: this.registry });
    this.#calls = new Counter({
      name: "rpc_server_handled_total",
      help: "RPCs completed, by method, protocol and status code.",
      labelNames: ["method", "code", "protocol"],
      registers: [this.registry],
    });
    this.#latency = new Histogram({
      name: "rpc_server_handling_seconds",
      help: "Time from the start of an RPC to its answer.",
      labelNames: ["method", "protocol"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
  }

  /** Records one finished call; `code` is the gRPC code name, `ok` for success. */
  observe(method: string, protocol: string, code: string, seconds: number): void {
    const series = this.#series(method, protocol);
    let calls = series.calls.get(code);
    if (calls === undefined) {
      calls = this.#calls.labels({ method, code, protocol });
      series.calls.set(code, calls);
    }
    calls.inc();
    series.latency.observe(seconds);
  }

  /**
   * The label children of one method and protocol, looked up once: prom-client hashes a
   * label object (sorting and joining its keys) on every `inc` and `observe` given one.
   */
  #series(method: string, protocol: string): Series {
    let byProtocol = this.#children.get(method);
    if (byProtocol === undefined) {
      byProtocol = new Map();
      this.#children.set(method, byProtocol);
    }
    let series = byProtocol.get(protocol);
    if (series === undefined) {
      series = { latency: this.#latency.labels({ method, protocol }), calls: new Map() };
      byProtocol.set(protocol, series);
    }
    return series;
  }

  /** The exposition text for `/metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
