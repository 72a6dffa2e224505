import type { EntityManager } from "@mikro-orm/postgresql";
import type { SecretBox } from "../auth/auth-deps.ts";
import type { WriteAudit } from "../records/record-writes.ts";
import type { Patient } from "../patients/patient.ts";
import type { Clock } from "../shared/clock.ts";
import { alreadyExists, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid, uuidV7 } from "../shared/uuid-v7.ts";
import type { BillingConfig } from "./billing-config.ts";
import type { BillingStore, ChargeRow } from "./billing-store.ts";
import { type InvoiceView, invoiceView, sealInsurance } from "./invoice-insurance.ts";
import {
  type ChargeKindName,
  type InvoiceableCharge,
  type InvoiceStateName,
  invoiceLines,
  linesToJson,
} from "./invoice-rules.ts";
import { requireAmount, requireCurrency } from "./money.ts";

/** A charge as a producer asks for it. */
export interface ChargeInput {
  readonly kind: ChargeKindName;
  readonly sourceResource: string;
  readonly description: string;
  /** Undefined: the price list's price for the kind. */
  readonly amount: { readonly minor: bigint; readonly currency: string } | undefined;
}

/** What invoicing needs. */
export interface InvoicingDeps {
  readonly em: () => EntityManager;
  readonly store: BillingStore;
  /** The patient's profile (insurance), through the patients context. */
  readonly patientOf: (patientId: string) => Promise<Patient>;
  readonly clock: Clock;
  /** Seals the insurance copy of each invoice at rest (invoice-insurance.ts). */
  readonly box: SecretBox;
  readonly settings: Pick<BillingConfig, "taxes" | "coverageBasisPoints" | "invoiceDueDays" | "priceList">;
}

/**
 * Charges and invoices. A charge is recorded once per source resource (a sibling
 * service's CreateCharge, or a completed consultation, which billing charges itself
 * at the price agreed with the Doctor Service at booking). Pending charges roll up
 * into one OPEN invoice per patient and currency: on the patient's next ListInvoices,
 * and by the periodic roll-up. Lines, taxes and the insurer's share are computed once,
 * when the invoice is issued, with the insurance on the profile then (invoice-rules.ts).
 */
export class Invoicing {
  readonly #d: InvoicingDeps;

  constructor(deps: InvoicingDeps) {
    this.#d = deps;
  }

  async createCharge(
    patientId: string,
    input: ChargeInput,
    requestId: string,
    createdBy: string,
    audit: WriteAudit | undefined,
  ): Promise<ChargeRow> {
    await this.#d.patientOf(patientId);
    const own = `patients/${patientId}/`;
    if (input.sourceResource.startsWith("patients/") && !input.sourceResource.startsWith(own)) {
      throw invalidArgument("charge.source_resource", "must be a resource of the patient in parent");
    }
    const listed = this.#d.settings.priceList.get(input.kind);
    if (input.amount === undefined && listed === undefined) {
      throw invalidArgument("charge.amount", "is required: the price list has no price for this kind");
    }
    const currency = requireCurrency(input.amount?.currency ?? listed?.currency ?? "", "charge.amount.currency_code");
    const minor = requireAmount(input.amount?.minor ?? listed?.amountMinor ?? 0n, "charge.amount.amount_minor");
    const em = this.#d.em();
    const replayed = await this.#d.store.chargeByRequest(em, patientId, requestId);
    if (replayed !== undefined) return replayed;
    return em.transactional(async (tx) => {
      const now = this.#d.clock.now();
      const id = uuidV7(now.getTime());
      const inserted = await this.#d.store.insertCharge(tx, {
        id,
        patientId,
        kind: input.kind,
        sourceResource: input.sourceResource,
        description: input.description || input.sourceResource,
        amountMinor: minor,
        currency,
        requestId,
        createdBy,
        now,
      });
      if (inserted === undefined) {
        const raced = await this.#d.store.chargeByRequest(tx, patientId, requestId);
        if (raced !== undefined) return raced;
        throw alreadyExists("CHARGE_EXISTS", "That resource has been charged already.");
      }
      await audit?.within(tx, { resource: `patients/${patientId}/charges/${id}` });
      return inserted;
    });
  }

  /**
   * Charges the patient's completed consultations that have no charge yet, then rolls
   * every pending charge into one new OPEN invoice per currency. Concurrent roll-ups
   * skip each other's locked charges, and a charge is invoiced only from PENDING.
   */
  async rollUp(patientId: string): Promise<number> {
    const patient = await this.#d.patientOf(patientId);
    const em = this.#d.em();
    return em.transactional(async (tx) => {
      const now = this.#d.clock.now();
      await this.#d.store.chargeCompletedConsultations(tx, patientId, now);
      const pending = await this.#d.store.lockPendingCharges(tx, patientId);
      const byCurrency = new Map<string, ChargeRow[]>();
      for (const charge of pending)
        byCurrency.set(charge.currency, [...(byCurrency.get(charge.currency) ?? []), charge]);
      let issued = 0;
      for (const [currency, charges] of byCurrency) {
        await this.#issue(tx, patient, currency, charges, now);
        issued++;
      }
      return issued;
    });
  }

  /** The periodic roll-up: charges every completed consultation, invoices every patient with pending charges. */
  async rollUpAll(): Promise<void> {
    const em = this.#d.em();
    await this.#d.store.chargeCompletedConsultations(em, undefined, this.#d.clock.now());
    for (const patientId of await this.#d.store.patientsWithPendingCharges(em, 500)) {
      await this.rollUp(patientId).catch(() => undefined);
    }
  }

  /** An invoice, its insurance opened. */
  async get(patientId: string, invoiceId: string): Promise<InvoiceView> {
    if (!isUuid(invoiceId)) throw notFound("Invoice");
    const row = await this.#d.store.invoice(this.#d.em(), patientId, invoiceId);
    if (row === undefined) throw notFound("Invoice");
    return invoiceView(this.#d.box, row);
  }

  async list(
    patientId: string,
    states: readonly InvoiceStateName[],
    after: { createdAt: string; id: string } | undefined,
    limit: number,
  ): Promise<InvoiceView[]> {
    if (after === undefined) await this.rollUp(patientId);
    const rows = await this.#d.store.invoices(this.#d.em(), patientId, states, after, limit);
    return rows.map((row) => invoiceView(this.#d.box, row));
  }

  async #issue(tx: EntityManager, patient: Patient, currency: string, charges: ChargeRow[], now: Date) {
    const insurance = validInsurance(patient, now);
    const coverage = insurance === undefined ? 0 : this.#d.settings.coverageBasisPoints;
    const { lines, totals } = invoiceLines(charges.map(invoiceable), this.#d.settings.taxes, coverage);
    const id = uuidV7(now.getTime());
    await this.#d.store.insertInvoice(tx, {
      id,
      patientId: patient.id,
      invoiceNumber: `INV-${now.getUTCFullYear()}-${id.replace(/-/g, "").slice(-10).toUpperCase()}`,
      state: totals.patientTotalMinor === 0n ? "paid" : "open",
      currency,
      lines: linesToJson(lines),
      totals: {
        subtotal: totals.subtotalMinor,
        tax: totals.taxMinor,
        total: totals.totalMinor,
        covered: totals.coveredMinor,
        patientTotal: totals.patientTotalMinor,
      },
      insuranceSealed:
        insurance === undefined
          ? null
          : sealInsurance(this.#d.box, id, {
              provider: insurance.provider,
              policyNumber: insurance.policyNumber,
              memberId: insurance.memberId,
              coverageBasisPoints: coverage,
            }),
      dueDate: new Date(now.getTime() + this.#d.settings.invoiceDueDays * 86_400_000).toISOString().slice(0, 10),
      now,
    });
    const marked = await this.#d.store.markInvoiced(
      tx,
      charges.map((charge) => charge.id),
      id,
      now,
    );
    if (marked !== charges.length) throw new Error("a locked pending charge was invoiced elsewhere");
  }
}

function invoiceable(charge: ChargeRow): InvoiceableCharge {
  return {
    id: charge.id,
    kind: charge.kind,
    sourceResource: charge.source_resource,
    description: charge.description,
    amountMinor: BigInt(charge.amount_minor),
  };
}

/** The profile's insurance when it still covers `now` (no end date, or an end date today or later). */
function validInsurance(patient: Patient, now: Date) {
  const insurance = patient.insurance;
  if (insurance === undefined) return undefined;
  const until = insurance.validUntil;
  if (until === undefined || until.year === 0) return insurance;
  const last = Date.UTC(until.year, until.month - 1, until.day) + 86_400_000;
  return last > now.getTime() ? insurance : undefined;
}
