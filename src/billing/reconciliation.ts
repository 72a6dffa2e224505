import type { EntityManager } from "@mikro-orm/postgresql";
import type { BillingStore } from "./billing-store.ts";
import type { PaymentProvider, ProviderTransaction } from "./payment-provider.ts";

/** One way our ledger and the provider's disagree. */
export interface Difference {
  readonly kind: "missing_at_provider" | "unknown_to_us" | "status_differs" | "amount_differs";
  readonly what: "payment" | "refund";
  /** Our payment or refund id (the provider's merchant reference). */
  readonly id: string;
  readonly providerReference: string;
  readonly ours: string;
  readonly theirs: string;
}

/** What a reconciliation run found. */
export interface ReconciliationReport {
  readonly from: Date;
  readonly to: Date;
  readonly paymentsChecked: number;
  readonly refundsChecked: number;
  readonly providerTransactions: number;
  readonly differences: readonly Difference[];
}

/**
 * Compares our ledger (payments and refunds created in [from, to)) with the provider's
 * transactions report for the same window: every collect and refund must be on both
 * sides, with the same amount, currency and status. A difference is reported, never
 * repaired here: a lost callback shows as `status_differs` until the poller applies
 * the status, anything else needs a person (`npm run billing:reconcile`).
 */
export async function reconcile(
  em: EntityManager,
  store: BillingStore,
  provider: PaymentProvider,
  from: Date,
  to: Date,
): Promise<ReconciliationReport> {
  const [payments, refunds, theirs] = await Promise.all([
    store.paymentsBetween(em, provider.name, from, to),
    store.refundsBetween(em, provider.name, from, to),
    provider.transactions(from, to),
  ]);
  const byMerchant = new Map<string, ProviderTransaction>();
  for (const t of theirs) byMerchant.set(`${t.kind}:${t.merchantReference}`, t);
  const seen = new Set<string>();
  const differences: Difference[] = [];
  const compare = (
    what: "payment" | "refund",
    id: string,
    reference: string | null,
    ours: { amount: bigint; currency: string; status: string },
    expectedAtProvider: boolean,
  ) => {
    const key = `${what === "payment" ? "collect" : "refund"}:${id}`;
    seen.add(key);
    const t = byMerchant.get(key);
    const base = { what, id, providerReference: reference ?? t?.reference ?? "" };
    if (t === undefined) {
      if (expectedAtProvider) differences.push({ ...base, kind: "missing_at_provider", ours: ours.status, theirs: "" });
      return;
    }
    if (t.amountMinor !== ours.amount || t.currency !== ours.currency) {
      differences.push({
        ...base,
        kind: "amount_differs",
        ours: `${ours.amount} ${ours.currency}`,
        theirs: `${t.amountMinor} ${t.currency}`,
      });
    }
    if (t.status !== ours.status)
      differences.push({ ...base, kind: "status_differs", ours: ours.status, theirs: t.status });
  };
  for (const p of payments) {
    compare(
      "payment",
      p.id,
      p.provider_reference,
      { amount: BigInt(p.amount_minor), currency: p.currency, status: p.state },
      p.provider_reference !== null,
    );
  }
  for (const r of refunds) {
    compare(
      "refund",
      r.id,
      r.provider_reference,
      { amount: BigInt(r.amount_minor), currency: r.payment_currency, status: r.state },
      r.provider_reference !== null,
    );
  }
  for (const t of theirs) {
    if (seen.has(`${t.kind}:${t.merchantReference}`)) continue;
    differences.push({
      kind: "unknown_to_us",
      what: t.kind === "collect" ? "payment" : "refund",
      id: t.merchantReference,
      providerReference: t.reference,
      ours: "",
      theirs: `${t.status} ${t.amountMinor} ${t.currency}`,
    });
  }
  return {
    from,
    to,
    paymentsChecked: payments.length,
    refundsChecked: refunds.length,
    providerTransactions: theirs.length,
    differences,
  };
}
