import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * The UPI collect API the payment provider speaks (JSON over HTTPS), as the embedded
 * simulator serves it and `HttpUpiProvider` calls it. Modelled on UPI payment service
 * providers' collect flows: a collect request to a VPA, a status, refunds of a
 * collect, a transactions report, and signed callbacks. Amounts are decimal strings
 * of minor units (JSON numbers lose precision past 2^53).
 */
export type CollectStatus = "PENDING" | "AUTHORIZED" | "SUCCEEDED" | "FAILED" | "EXPIRED";
export type RefundStatus = "PENDING" | "SUCCEEDED" | "FAILED";
export type FailureCode = "DECLINED" | "INSUFFICIENT_FUNDS" | "INVALID_VPA" | "TIMEOUT" | "PROVIDER_ERROR";

export interface WireCollect {
  readonly reference: string;
  readonly merchantReference: string;
  readonly amountMinor: string;
  readonly currency: string;
  readonly vpa: string;
  readonly status: CollectStatus;
  readonly failureCode?: FailureCode;
  /** The UPI retrieval reference number, once the bank settled. */
  readonly rrn?: string;
  readonly createdAt: string;
  readonly expireAt: string;
  readonly updatedAt: string;
}

export interface WireRefund {
  readonly reference: string;
  readonly merchantRefundId: string;
  readonly collectReference: string;
  readonly amountMinor: string;
  readonly currency: string;
  readonly status: RefundStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A callback: one state change of a collect or a refund, with the provider's event id. */
export interface WireEvent {
  readonly eventId: string;
  readonly type: `collect.${Lowercase<CollectStatus>}` | `refund.${Lowercase<RefundStatus>}`;
  readonly occurredAt: string;
  readonly collect?: WireCollect;
  readonly refund?: WireRefund;
}

/** One line of the provider's transactions report (reconciliation). */
export interface WireTransaction {
  readonly kind: "collect" | "refund";
  readonly reference: string;
  readonly merchantReference: string;
  readonly amountMinor: string;
  readonly currency: string;
  readonly status: CollectStatus | RefundStatus;
  readonly updatedAt: string;
}

/** The signature header of a callback: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`. */
export const signatureHeader = "x-upi-signature";

/** Signs a callback body at `unixSeconds`. */
export function signBody(secret: Buffer, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * Checks a callback's signature and its age (`toleranceSeconds` either way of `nowMs`),
 * in constant time. False for a missing, malformed, wrong or stale signature.
 */
export function verifySignature(
  secret: Buffer,
  header: string | undefined,
  body: string,
  nowMs: number,
  toleranceSeconds: number,
): boolean {
  const match = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (match === null) return false;
  const unixSeconds = Number(match[1]);
  if (Math.abs(nowMs / 1000 - unixSeconds) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2] as string, "hex"));
}
