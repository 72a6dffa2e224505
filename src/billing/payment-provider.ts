import type { FailureReasonName, PaymentStateName, RefundStateName } from "./payment-states.ts";

/** A collect request as the provider reports it, in our terms. */
export interface ProviderCollect {
  readonly reference: string;
  /** Our payment id. */
  readonly merchantReference: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: PaymentStateName;
  readonly failureReason?: FailureReasonName;
  readonly expireAt: Date;
  readonly updatedAt: Date;
}

/** A refund as the provider reports it. */
export interface ProviderRefund {
  readonly reference: string;
  /** Our refund id. */
  readonly merchantRefundId: string;
  readonly collectReference: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: RefundStateName;
  readonly updatedAt: Date;
}

/** One thing the provider told us (a callback, or a poll answer we turned into one). */
export interface ProviderEvent {
  /** Unique per provider: a callback's own id, or `poll:<reference>:<status>` for a poll answer. */
  readonly eventId: string;
  readonly occurredAt: Date;
  readonly collect?: ProviderCollect;
  readonly refund?: ProviderRefund;
}

/** A line of the provider's transactions report. */
export interface ProviderTransaction {
  readonly kind: "collect" | "refund";
  readonly reference: string;
  readonly merchantReference: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: PaymentStateName | RefundStateName;
}

/** The provider refused the request for good (an unknown VPA, a refund over the collect): retrying changes nothing. */
export class ProviderRefusal extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "ProviderRefusal";
    this.code = code;
  }
}

/** The provider could not be reached or failed: the request may or may not have happened; retry with the same ids. */
export class ProviderUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProviderUnavailable";
  }
}

/**
 * What billing needs from a UPI payment provider. Every request is idempotent by our
 * id (the payment id for a collect, the refund id for a refund), so a retry after a
 * lost answer never makes a second collect or refund. A real provider plugs in by
 * implementing this (README "Billing and payments"); `HttpUpiProvider` implements it
 * for the API the embedded simulator serves.
 */
export interface PaymentProvider {
  /** Short stable name, stored with each payment (`upi-sim`). */
  readonly name: string;
  createCollect(input: {
    readonly merchantReference: string;
    readonly amountMinor: bigint;
    readonly currency: string;
    readonly vpa: string;
    readonly expireAfterSeconds: number;
    readonly callbackUrl: string;
  }): Promise<ProviderCollect>;
  /** The collect's status now, by its reference or our payment id. */
  getCollect(reference: string): Promise<ProviderCollect>;
  refund(input: {
    readonly merchantRefundId: string;
    readonly collectReference: string;
    readonly amountMinor: bigint;
    readonly currency: string;
  }): Promise<ProviderRefund>;
  /** Every collect and refund created in [from, to), for reconciliation. */
  transactions(from: Date, to: Date): Promise<ProviderTransaction[]>;
  /**
   * A callback's event when its signature verifies (and is fresh at `now`); undefined
   * otherwise. `headers` are lower-case.
   */
  parseCallback(
    headers: Readonly<Record<string, string | string[] | undefined>>,
    body: string,
    now: Date,
  ): ProviderEvent | undefined;
}
