/** Payment states as stored (the lower-case short names of Payment.State). */
export const paymentStates = ["pending", "authorized", "succeeded", "failed", "expired"] as const;
export type PaymentStateName = (typeof paymentStates)[number];

/** Failure reasons as stored (Payment.FailureReason). */
export const failureReasons = [
  "declined",
  "insufficient_funds",
  "invalid_upi_id",
  "timeout",
  "provider_error",
] as const;
export type FailureReasonName = (typeof failureReasons)[number];

/** Refund states as stored (Refund.State). */
export const refundStates = ["pending", "succeeded", "failed"] as const;
export type RefundStateName = (typeof refundStates)[number];

/**
 * The payment state machine: PENDING -> AUTHORIZED -> SUCCEEDED; PENDING | AUTHORIZED
 * -> FAILED | EXPIRED; EXPIRED -> SUCCEEDED (a late success after a timeout is
 * honoured: the money was taken, so it is recorded, and refunded if not owed).
 * Everything else (a repeat, an older status after a newer one) changes nothing.
 */
const moves: Readonly<Record<PaymentStateName, readonly PaymentStateName[]>> = {
  pending: ["authorized", "succeeded", "failed", "expired"],
  authorized: ["succeeded", "failed", "expired"],
  expired: ["succeeded"],
  succeeded: [],
  failed: [],
};

/** Whether a payment in `from` moves to `to` on a provider's report; false means "ignore the report". */
export function paymentMoves(from: PaymentStateName, to: PaymentStateName): boolean {
  return moves[from].includes(to);
}

/** States in which a payment still holds part of an invoice's amount due (no second payment for it). */
export const inFlightStates: readonly PaymentStateName[] = ["pending", "authorized"];

/** States the provider may still change (polled). */
export function isOpen(state: PaymentStateName): boolean {
  return state === "pending" || state === "authorized";
}
