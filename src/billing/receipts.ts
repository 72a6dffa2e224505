import type { InvoiceRow } from "./billing-store.ts";
import { linesFromJson } from "./invoice-rules.ts";
import { formatAmount } from "./money.ts";
import type { PaymentView } from "./payments.ts";

/** A rendered receipt. */
export interface ReceiptDocument {
  readonly contentType: "text/html" | "application/pdf";
  readonly content: Uint8Array;
}

/** What a receipt shows besides the payment and its invoice. */
export interface ReceiptContext {
  readonly payeeName: string;
  readonly patientName: string;
}

/** `as****@okaxis`: a receipt shows enough of the UPI id to recognise it, not the whole. */
export function maskUpiId(upiId: string): string {
  const [handle = "", provider = ""] = upiId.split("@");
  return `${handle.slice(0, 2)}${"*".repeat(Math.max(2, handle.length - 2))}@${provider}`;
}

function rows(view: PaymentView, invoice: InvoiceRow, context: ReceiptContext): [string, string][] {
  const p = view.payment;
  const refunded = BigInt(p.refunded_minor);
  return [
    ["Receipt number", p.receipt_number ?? ""],
    ["Invoice", invoice.invoice_number],
    ["Billed to", context.patientName],
    ["Amount paid", formatAmount(BigInt(p.amount_minor), p.currency)],
    ...(refunded > 0n ? ([["Refunded", formatAmount(refunded, p.currency)]] as [string, string][]) : []),
    ["Paid with", `UPI ${maskUpiId(view.upiId)}`],
    ["UPI reference", p.provider_reference ?? ""],
    [
      "Paid on",
      p.settled_at === null ? "" : `${new Date(p.settled_at).toISOString().replace("T", " ").slice(0, 19)} UTC`,
    ],
  ];
}

/** The receipt as a well-formed HTML5 document (XHTML-compatible: every element closed, every text escaped). */
export function htmlReceipt(view: PaymentView, invoice: InvoiceRow, context: ReceiptContext): ReceiptDocument {
  const c = invoice.currency;
  const lines = linesFromJson(invoice.lines)
    .map(
      (line) =>
        `<tr><td>${esc(line.description)}</td><td class="n">${esc(formatAmount(line.amountMinor, c))}</td>` +
        `<td class="n">${esc(
          formatAmount(
            line.taxes.reduce((s, t) => s + t.amountMinor, 0n),
            c,
          ),
        )}</td>` +
        `<td class="n">${esc(formatAmount(line.coveredMinor, c))}</td><td class="n">${esc(formatAmount(line.patientShareMinor, c))}</td></tr>`,
    )
    .join("\n");
  const facts = rows(view, invoice, context)
    .map(([label, value]) => `<tr><th scope="row">${esc(label)}</th><td>${esc(value)}</td></tr>`)
    .join("\n");
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>Receipt ${esc(view.payment.receipt_number ?? "")}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:4px 8px;text-align:left}.n{text-align:right}</style>
</head>
<body>
<h1>${esc(context.payeeName)}: payment receipt</h1>
<table>
${facts}
</table>
<h2>Invoice ${esc(invoice.invoice_number)}</h2>
<table>
<thead><tr><th>Item</th><th class="n">Amount</th><th class="n">Tax</th><th class="n">Insurance</th><th class="n">Your share</th></tr></thead>
<tbody>
${lines}
</tbody>
</table>
</body>
</html>
`;
  return { contentType: "text/html", content: new TextEncoder().encode(html) };
}

/** The receipt as a one-page PDF 1.4 (Helvetica, text only, ASCII), with a correct cross-reference table. */
export function pdfReceipt(view: PaymentView, invoice: InvoiceRow, context: ReceiptContext): ReceiptDocument {
  const c = invoice.currency;
  const text = [
    `${context.payeeName}: payment receipt`,
    "",
    ...rows(view, invoice, context).map(([label, value]) => `${label}: ${value}`),
    "",
    `Invoice ${invoice.invoice_number}`,
    ...linesFromJson(invoice.lines).map(
      (line) =>
        `${line.description}  ${formatAmount(line.amountMinor, c)}  your share ${formatAmount(line.patientShareMinor, c)}`,
    ),
  ];
  const stream = ["BT /F1 11 Tf 50 790 Td 15 TL", ...text.map((line) => `(${pdfText(line)}) '`), "ET"].join("\n");
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${Buffer.byteLength(stream, "latin1")} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((body, index) => {
    offsets.push(Buffer.byteLength(out, "latin1"));
    out += `${index + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, "latin1");
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  out += offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("");
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return { contentType: "application/pdf", content: new Uint8Array(Buffer.from(out, "latin1")) };
}

function esc(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** PDF string literal text: ASCII only (others become ?), with \\, ( and ) escaped. */
function pdfText(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").replace(/[\\()]/g, (ch) => `\\${ch}`);
}
