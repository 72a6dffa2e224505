import { describe, expect, it } from "vitest";
import { amountDue, invoiceLines, invoiceStateAfter } from "../../src/billing/invoice-rules.ts";
import { divideHalfEven, formatAmount, shareOf } from "../../src/billing/money.ts";
import { paymentMoves } from "../../src/billing/payment-states.ts";

const charge = (id: string, amountMinor: bigint) => ({
  id,
  kind: "other" as const,
  sourceResource: `patients/p/services/${id}`,
  description: id,
  amountMinor,
});

describe("money in integer minor units, rounded half to even", () => {
  it("rounds halves to the even neighbour, either sign", () => {
    expect([5n, 15n, 25n, 35n, -5n, -15n].map((n) => divideHalfEven(n, 10n))).toEqual([0n, 2n, 2n, 4n, 0n, -2n]);
    expect(divideHalfEven(14n, 10n)).toBe(1n);
    expect(divideHalfEven(16n, 10n)).toBe(2n);
    // 9% of ₹0.50 is 4.5 paise: 4; of ₹0.50 + 1 paisa, 4.59: 5.
    expect(shareOf(50n, 900)).toBe(4n);
    expect(shareOf(51n, 900)).toBe(5n);
    // Far beyond 2^53, exactly.
    expect(shareOf(9_007_199_254_740_993n, 10_000)).toBe(9_007_199_254_740_993n);
  });

  it("formats amounts by the currency's exponent", () => {
    expect(formatAmount(11_800n, "INR")).toBe("INR 118.00");
    expect(formatAmount(5n, "INR")).toBe("INR 0.05");
    expect(formatAmount(1500n, "JPY")).toBe("JPY 1500");
    expect(formatAmount(1_234n, "KWD")).toBe("KWD 1.234");
  });
});

describe("invoice lines: taxes and the insurer's share per line", () => {
  it("sums lines exactly: covered + patient share is each line's total", () => {
    const { lines, totals } = invoiceLines(
      [charge("a", 50_000n), charge("b", 333n)],
      [
        { name: "CGST", basisPoints: 900 },
        { name: "SGST", basisPoints: 900 },
      ],
      8000,
    );
    // 333 paise: 29.97 -> 30 of each tax; 393 gross, 314.4 -> 314 covered, 79 the patient's.
    expect(lines[1]).toMatchObject({ coveredMinor: 314n, patientShareMinor: 79n });
    expect(lines[1]?.taxes.map((t) => t.amountMinor)).toEqual([30n, 30n]);
    expect(totals).toEqual({
      subtotalMinor: 50_333n,
      taxMinor: 9_060n,
      totalMinor: 59_393n,
      coveredMinor: 47_514n,
      patientTotalMinor: 11_879n,
    });
    for (const line of lines) {
      const gross = line.amountMinor + line.taxes.reduce((s, t) => s + t.amountMinor, 0n);
      expect(line.coveredMinor + line.patientShareMinor).toBe(gross);
    }
  });

  it("without insurance the patient pays everything", () => {
    const { totals } = invoiceLines([charge("a", 1_000n)], [], 0);
    expect(totals.patientTotalMinor).toBe(1_000n);
  });
});

describe("invoice and payment states", () => {
  it("follows payments and refunds", () => {
    expect(invoiceStateAfter("open", 1000n, 400n, 0n)).toBe("partially_paid");
    expect(invoiceStateAfter("partially_paid", 1000n, 1000n, 0n)).toBe("paid");
    expect(invoiceStateAfter("paid", 1000n, 2000n, 1000n)).toBe("paid");
    expect(invoiceStateAfter("paid", 1000n, 1000n, 1000n)).toBe("refunded");
    expect(invoiceStateAfter("void", 1000n, 0n, 0n)).toBe("void");
    expect(amountDue("partially_paid", 1000n, 400n, 0n)).toBe(600n);
    expect(amountDue("paid", 1000n, 2000n, 1000n)).toBe(0n);
    expect(amountDue("refunded", 1000n, 1000n, 1000n)).toBe(0n);
  });

  it("moves a payment forward only; a repeat or an older status changes nothing; a late success is honoured", () => {
    expect(paymentMoves("pending", "authorized")).toBe(true);
    expect(paymentMoves("authorized", "succeeded")).toBe(true);
    expect(paymentMoves("succeeded", "authorized")).toBe(false);
    expect(paymentMoves("succeeded", "succeeded")).toBe(false);
    expect(paymentMoves("failed", "succeeded")).toBe(false);
    expect(paymentMoves("expired", "succeeded")).toBe(true);
    expect(paymentMoves("expired", "authorized")).toBe(false);
  });
});
