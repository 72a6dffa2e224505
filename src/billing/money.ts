import { invalidArgument } from "../shared/domain-errors.ts";

/**
 * Money as integer minor units (paise, cents) with an ISO 4217 code: never floating
 * point. Amounts are `bigint` in the domain and `bigint` columns in PostgreSQL.
 */
export interface Amount {
  readonly minor: bigint;
  readonly currency: string;
}

/**
 * The ISO 4217 codes the service bills in, with their minor-unit exponent. A code
 * outside this list (well-formed or not) is INVALID_ARGUMENT: the contract checks the
 * shape (`^[A-Z]{3}$`), this the meaning.
 */
export const currencies: ReadonlyMap<string, number> = new Map([
  ["INR", 2],
  ["USD", 2],
  ["EUR", 2],
  ["GBP", 2],
  ["AED", 2],
  ["SGD", 2],
  ["JPY", 0],
  ["KWD", 3],
]);

/** Largest amount a charge, payment or refund may carry (10^13 minor units; Money allows 10^15). */
export const maxAmountMinor = 10_000_000_000_000n;

/** Checks a currency code the service bills in; `field` names it in the violation. */
export function requireCurrency(code: string, field: string): string {
  if (!currencies.has(code)) throw invalidArgument(field, "must be an ISO 4217 currency code the service bills in");
  return code;
}

/** Checks a positive amount within bounds; `field` names it in the violation. */
export function requireAmount(minor: bigint, field: string): bigint {
  if (minor <= 0n) throw invalidArgument(field, "must be greater than zero");
  if (minor > maxAmountMinor) throw invalidArgument(field, `must be at most ${maxAmountMinor} minor units`);
  return minor;
}

/**
 * `numerator / denominator` rounded half to even (banker's rounding), in integers:
 * the rule for every tax and insurance share. `denominator` must be positive.
 */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError("denominator must be positive");
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  let quotient = n / denominator;
  const twice = (n % denominator) * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) quotient += 1n;
  return negative ? -quotient : quotient;
}

/** `amount × basisPoints / 10000`, rounded half to even. */
export function shareOf(amount: bigint, basisPoints: number): bigint {
  return divideHalfEven(amount * BigInt(basisPoints), 10_000n);
}

/** `12345` INR as `₹123.45`-like plain text for receipts and notifications: `INR 123.45`. */
export function formatAmount(minor: bigint, currency: string): string {
  const exponent = currencies.get(currency) ?? 2;
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(exponent + 1, "0");
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const fraction = exponent === 0 ? "" : `.${digits.slice(-exponent)}`;
  return `${currency} ${negative ? "-" : ""}${whole}${fraction}`;
}
