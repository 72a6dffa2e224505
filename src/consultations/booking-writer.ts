import { type AuditSink, type CallAudit, recordCallsWith } from "../audit/call-audit.ts";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import type { Consultation } from "./consultation.ts";
import { type ConsultationRepository, type NewConsultation, slotTaken } from "./consultation-repository.ts";
import { GroupCommit, type GroupCommitOptions, type GroupOutcome } from "../shared/group-commit.ts";

interface NewBooking {
  readonly row: NewConsultation;
  readonly audit: CallAudit | undefined;
}

/**
 * Commits new bookings (state REQUESTED) with their audit entries, group-committed:
 * the bookings that arrive in one event-loop turn share one statement through the audit
 * log when none conflicts (`#inOneStatement`), else one transaction, one INSERT and
 * one append to the audit chain. The chain has one head row that every append locks
 * until its commit, so with a transaction per booking, bookings took turns there; a
 * group takes its turn once. Each booking keeps its own outcome: stored with its audit
 * entry (atomically: same transaction), a concurrent retry's row (undefined), or
 * SLOT_UNAVAILABLE when another live consultation has the slot.
 */
export class BookingWriter {
  readonly #repository: ConsultationRepository;
  readonly #sink: AuditSink | undefined;
  readonly #group: GroupCommit<NewBooking, Consultation | undefined>;

  /** `sink` is where `audit` entries go (the audit log); without one, each entry is appended by its CallAudit. */
  constructor(repository: ConsultationRepository, sink: AuditSink | undefined, options: GroupCommitOptions = {}) {
    this.#repository = repository;
    this.#sink = sink;
    this.#group = new GroupCommit((bookings) => this.#commit(bookings), options);
  }

  /** Stores a booking once its transaction commits; undefined when its patient's request id was taken. */
  insert(row: NewConsultation, audit: CallAudit | undefined): Promise<Consultation | undefined> {
    return this.#group.add({ row, audit });
  }

  async #commit(bookings: readonly NewBooking[]): Promise<GroupOutcome<Consultation | undefined>[]> {
    if (await this.#inOneStatement(bookings)) {
      return bookings.map(({ row }) => ({ value: this.#repository.storedOf(row) }));
    }
    return this.#inTransaction(bookings);
  }

  /**
   * The rows and their entries in ONE statement through the audit log (`recordWith`),
   * when every booking has its call's audit trail; false when nothing was written (a
   * slot or request id taken, or an audit chain other processes kept moving): the
   * transaction then tells each booking its outcome.
   */
  #inOneStatement(bookings: readonly NewBooking[]): Promise<boolean> {
    return recordCallsWith(
      this.#sink,
      bookings.map(({ row, audit }) => ({ audit, overrides: { resource: resourceOf(row) } })),
      () => this.#repository.insertChange(bookings.map(({ row }) => row)),
    );
  }

  /** One transaction: the rows, which of the missing ones were retries, the audit entries. */
  #inTransaction(bookings: readonly NewBooking[]): Promise<GroupOutcome<Consultation | undefined>[]> {
    const repository = this.#repository;
    return repository.fork().transactional(async (em) => {
      const rows = bookings.map((booking) => booking.row);
      const stored = await repository.insertMany(em, rows);
      const retries = await repository.requestIdsTaken(
        em,
        rows.filter((row) => !stored.has(row.id)),
      );
      const audited = bookings.filter((booking) => booking.audit !== undefined && stored.has(booking.row.id));
      if (this.#sink !== undefined) {
        await this.#sink.recordWithin(
          em,
          audited.map(({ row, audit }) =>
            (audit as CallAudit).draft(AuditOutcome.SUCCESS, "", { resource: resourceOf(row) }),
          ),
        );
        for (const { audit } of audited) (audit as CallAudit).recorded = true;
      } else {
        for (const { row, audit } of audited) await (audit as CallAudit).within(em, { resource: resourceOf(row) });
      }
      return rows.map((row): GroupOutcome<Consultation | undefined> => {
        const consultation = stored.get(row.id);
        if (consultation !== undefined) return { value: consultation };
        return retries.has(row.id) ? { value: undefined } : { error: slotTaken() };
      });
    });
  }
}

function resourceOf(row: NewConsultation): string {
  return `patients/${row.patientId}/consultations/${row.id}`;
}
