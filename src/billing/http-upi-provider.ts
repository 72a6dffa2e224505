import type { FailureReasonName, PaymentStateName, RefundStateName } from "./payment-states.ts";
import {
  type PaymentProvider,
  type ProviderCollect,
  type ProviderEvent,
  type ProviderRefund,
  ProviderRefusal,
  type ProviderTransaction,
  ProviderUnavailable,
} from "./payment-provider.ts";
import {
  type FailureCode,
  signatureHeader,
  verifySignature,
  type WireCollect,
  type WireEvent,
  type WireRefund,
  type WireTransaction,
} from "./upi-wire.ts";

const failureReasons: Record<FailureCode, FailureReasonName> = {
  DECLINED: "declined",
  INSUFFICIENT_FUNDS: "insufficient_funds",
  INVALID_VPA: "invalid_upi_id",
  TIMEOUT: "timeout",
  PROVIDER_ERROR: "provider_error",
};

/** Options of `HttpUpiProvider`. */
export interface HttpUpiProviderOptions {
  readonly name: string;
  readonly baseUrl: string;
  readonly apiKey: Buffer;
  readonly webhookSecret: Buffer;
  readonly toleranceSeconds: number;
  /** Per request; a provider that does not answer in time is UNAVAILABLE, and the same ids are retried. */
  readonly timeoutMs?: number;
}

/**
 * The UPI collect API of src/billing/upi-wire.ts over HTTP: the embedded simulator's,
 * and the shape a real provider's adapter translates to. 4xx answers are refusals
 * (`ProviderRefusal`), everything else that is not 2xx, and network errors, are
 * `ProviderUnavailable`.
 */
export class HttpUpiProvider implements PaymentProvider {
  readonly name: string;
  readonly #o: HttpUpiProviderOptions;

  constructor(options: HttpUpiProviderOptions) {
    this.name = options.name;
    this.#o = options;
  }

  async createCollect(input: Parameters<PaymentProvider["createCollect"]>[0]): Promise<ProviderCollect> {
    const answer = await this.#call<{ collect: WireCollect }>("POST", "/v1/collects", {
      merchantReference: input.merchantReference,
      amountMinor: input.amountMinor.toString(),
      currency: input.currency,
      vpa: input.vpa,
      expireAfterSeconds: input.expireAfterSeconds,
      callbackUrl: input.callbackUrl,
    });
    return collectOf(answer.collect);
  }

  async getCollect(reference: string): Promise<ProviderCollect> {
    const answer = await this.#call<{ collect: WireCollect }>("GET", `/v1/collects/${encodeURIComponent(reference)}`);
    return collectOf(answer.collect);
  }

  async refund(input: Parameters<PaymentProvider["refund"]>[0]): Promise<ProviderRefund> {
    const answer = await this.#call<{ refund: WireRefund }>("POST", "/v1/refunds", {
      merchantRefundId: input.merchantRefundId,
      collectReference: input.collectReference,
      amountMinor: input.amountMinor.toString(),
      currency: input.currency,
    });
    return refundOf(answer.refund);
  }

  async transactions(from: Date, to: Date): Promise<ProviderTransaction[]> {
    const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    const answer = await this.#call<{ transactions: WireTransaction[] }>("GET", `/v1/transactions?${query}`);
    return answer.transactions.map((t) => ({
      kind: t.kind,
      reference: t.reference,
      merchantReference: t.merchantReference,
      amountMinor: BigInt(t.amountMinor),
      currency: t.currency,
      status: t.status.toLowerCase() as PaymentStateName | RefundStateName,
    }));
  }

  parseCallback(
    headers: Readonly<Record<string, string | string[] | undefined>>,
    body: string,
    now: Date,
  ): ProviderEvent | undefined {
    const signature = headers[signatureHeader];
    if (typeof signature !== "string") return undefined;
    if (!verifySignature(this.#o.webhookSecret, signature, body, now.getTime(), this.#o.toleranceSeconds)) {
      return undefined;
    }
    const event = JSON.parse(body) as WireEvent;
    if (typeof event.eventId !== "string" || event.eventId.length === 0 || event.eventId.length > 128) return undefined;
    return {
      eventId: event.eventId,
      occurredAt: new Date(event.occurredAt),
      ...(event.collect === undefined ? {} : { collect: collectOf(event.collect) }),
      ...(event.refund === undefined ? {} : { refund: refundOf(event.refund) }),
    };
  }

  async #call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.#o.baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${this.#o.apiKey.toString("utf8")}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000),
      });
    } catch (error) {
      throw new ProviderUnavailable(`payment provider unreachable (${(error as Error).name})`);
    }
    const text = await response.text().catch(() => "");
    if (response.ok) {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ProviderUnavailable("payment provider answered something that is not JSON");
      }
    }
    const code = errorCode(text) ?? `HTTP_${response.status}`;
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      throw new ProviderRefusal(code, `payment provider refused: ${code}`);
    }
    throw new ProviderUnavailable(`payment provider failed: ${code}`);
  }
}

/** The provider's error code in an error body, when there is one. */
function errorCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

function collectOf(wire: WireCollect): ProviderCollect {
  return {
    reference: wire.reference,
    merchantReference: wire.merchantReference,
    amountMinor: BigInt(wire.amountMinor),
    currency: wire.currency,
    status: wire.status.toLowerCase() as PaymentStateName,
    ...(wire.failureCode === undefined ? {} : { failureReason: failureReasons[wire.failureCode] }),
    expireAt: new Date(wire.expireAt),
    updatedAt: new Date(wire.updatedAt),
  };
}

function refundOf(wire: WireRefund): ProviderRefund {
  return {
    reference: wire.reference,
    merchantRefundId: wire.merchantRefundId,
    collectReference: wire.collectReference,
    amountMinor: BigInt(wire.amountMinor),
    currency: wire.currency,
    status: wire.status.toLowerCase() as RefundStateName,
    updatedAt: new Date(wire.updatedAt),
  };
}
