import { clone, create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { setImmediate as nextTurn } from "node:timers/promises";
import DataLoader from "dataloader";
import { AuditOutcome } from "../../gen/telemed/patient/v1/audit_pb.js";
import {
  type Record as RecordProto,
  RecordSchema,
  XrayImageSchema,
  XrayStudySchema,
} from "../../gen/telemed/patient/v1/record_pb.js";
import { CallAudit } from "../audit/call-audit.ts";
import type { Clock } from "../shared/clock.ts";
import type { DataKey } from "../shared/crypto/envelope.ts";
import { DomainError, invalidArgument, notFound } from "../shared/domain-errors.ts";
import { isUuid } from "../shared/uuid-v7.ts";
import { type AnyKind, contentOf, etagOf, kindOfDetails, type RecordSealer, recordToProto } from "./record-content.ts";
import type { RecordKindName } from "./record-entity.ts";
import type { RecordCreateWriter } from "./record-create-writer.ts";
import { NewRecordKeys } from "./new-record-keys.ts";
import type { NewRecordRow, RecordRepository, RecordRow } from "./record-repository.ts";
import {
  consultationIdsOf,
  kindRefusal,
  recordIdsOf,
  requireMaskFitsKind,
  requireMayAmend,
  requireWritableKind,
  sourceOf,
  type Writer,
} from "./record-rules.ts";
import type { XrayGateway } from "./xray-gateway.ts";

/** The audit trail a write records its entry on (the call's CallAudit, or a sync upload's per-change view of it). */
export type WriteAudit = Pick<CallAudit, "within" | "record">;

/** What `RecordWrites` makes of a new record before storing it. */
interface Sealed {
  readonly id: string;
  readonly now: Date;
  readonly key: DataKey;
  readonly content: RecordProto;
  readonly contentSealed: string;
  readonly fingerprint: string;
}

/** Extras of a write made for a sync upload (record-sync.ts). */
export interface WriteOptions {
  /** A created record is the client's side of a conflict with this record (`Record.conflict_of`). */
  readonly conflictOf?: string;
  /** Runs inside the write's transaction after the change (the upload's ledger entry). */
  readonly inTransaction?: (tx: EntityManager, recordId: string) => Promise<void>;
}

/** What the record writes need. */
export interface RecordWriteDeps {
  readonly em: () => EntityManager;
  readonly repository: RecordRepository;
  readonly sealer: RecordSealer;
  readonly xray: XrayGateway;
  readonly clock: Clock;
  /** Group-commits creates that need nothing else in their transaction. */
  readonly creates: RecordCreateWriter;
}

/**
 * CreateRecord, UpdateRecord and DeleteRecord. The pipeline admitted the caller's role
 * and the patient; here: which kinds a role writes, a doctor's care relationship (a
 * booked consultation with the patient), links that must point at this patient's own
 * consultation and records, the X-ray study's metadata from the X-ray Service, request
 * id replay, etags, and the audit entry in the same transaction as the change.
 */
export class RecordWrites {
  readonly #d: RecordWriteDeps;

  readonly #newKeys: NewRecordKeys;

  constructor(deps: RecordWriteDeps) {
    this.#d = deps;
    this.#newKeys = new NewRecordKeys(deps.sealer, deps.clock);
  }

  // The checks every write starts with, batched like reads: the writes that arrive in one
  // turn of the event loop share one query each instead of a statement apiece.
  readonly #livePatient = new DataLoader<string, boolean>(
    async (ids) => {
      const live = await this.#d.repository.livePatients(this.#d.em(), ids);
      return ids.map((id) => live.has(id));
    },
    { cache: false, maxBatchSize: 64, batchScheduleFn: (run) => setImmediate(run) },
  );

  readonly #createdBy = new DataLoader<{ patientId: string; requestId: string }, RecordRow | undefined>(
    async (requests) => {
      const rows = await this.#d.repository.findByRequests(this.#d.em(), requests);
      // uuids come back in canonical (lower-case) text.
      const byRequest = new Map(rows.map((row) => [`${row.patient_id}|${row.create_request_id}`, row]));
      return requests.map(({ patientId, requestId }) =>
        byRequest.get(`${patientId.toLowerCase()}|${requestId.toLowerCase()}`),
      );
    },
    { cache: false, maxBatchSize: 64, batchScheduleFn: (run) => setImmediate(run) },
  );

  async create(
    patientId: string,
    input: RecordProto,
    requestId: string,
    writer: Writer,
    audit: WriteAudit | undefined,
    options: WriteOptions = {},
  ): Promise<RecordProto> {
    const kind = kindOfDetails(input);
    if (kind === undefined) throw invalidArgument("record.details", "one kind of record is required");
    // Forked only when a check needs it: a fork costs ~10 µs, and an admin's create
    // without a consultation or related records queries only through the batched loaders.
    let forked: EntityManager | undefined;
    const em = () => (forked ??= this.#d.em());
    // Checked by the contract already; a malformed id must not fail the batch it would join.
    if (!isUuid(requestId)) throw invalidArgument("request_id", "must be a UUID");
    // Most creates need no check but the patient's liveness, which their group's statement
    // makes itself; the others, and those it refuses, go on to the checks below.
    const unchecked = await this.#createUnchecked(patientId, input, kind, requestId, writer, audit, options);
    if (unchecked !== undefined && "created" in unchecked) return unchecked.created;
    // The earlier create of this request id is looked up while access is checked (one
    // round trip instead of two); it is answered only to a writer that passed the check.
    const earlier = isUuid(patientId) ? this.#createdBy.load({ patientId, requestId }) : Promise.resolve(undefined);
    earlier.catch(() => undefined);
    const access = this.#requireWriteAccess(em, patientId, writer, audit);
    access.catch(() => undefined);
    // Sealed while the checks are in flight (after setImmediate: the loaders send their
    // batch first), and dropped if they fail. An X-ray study waits: its images come from
    // the X-ray Service, which only an allowed writer may ask.
    const early =
      input.details.case === "xrayStudy"
        ? undefined
        : (unchecked?.sealed ?? (await nextTurn().then(() => this.#sealed(input, input, options))));
    await access;
    requireWritableKind(writer.role, kind);
    const replayed = await earlier;
    if (replayed !== undefined) return this.#replay(replayed, input);

    const consultationId = await this.#consultationOf(em, patientId, input.consultation, writer, "record.consultation");
    await this.#requireRelated(em, patientId, input.relatedRecords, "");
    const sealed = early ?? this.#sealed(await this.#completed(patientId, input, undefined), input, options);
    const { id, content } = sealed;
    const row = newRow(patientId, kind as RecordKindName, input, requestId, writer, sealed, consultationId);
    if (options.inTransaction === undefined) {
      // Nothing else to do in its transaction: it shares one with the creates of this turn.
      const outcome = await this.#d.creates.insert(row, audit);
      return "stored" in outcome ? recordToProto(outcome.stored, content) : this.#replay(outcome.replay, input);
    }
    const inTransaction = options.inTransaction;
    return em().transactional(async (tx) => {
      const inserted = await this.#d.repository.insert(tx, row);
      const stored = await this.#d.repository.findByRequest(tx, patientId, requestId);
      if (stored === undefined) throw new Error("the inserted record is not there");
      if (!inserted) return this.#replay(stored, input);
      await audit?.within(tx, { resource: `patients/${patientId}/records/${id}` });
      await inTransaction(tx, id);
      return recordToProto(stored, content);
    });
  }

  async update(
    patientId: string,
    recordId: string,
    input: RecordProto,
    paths: readonly string[],
    writer: Writer,
    audit: WriteAudit | undefined,
    options: WriteOptions = {},
  ): Promise<RecordProto> {
    const em = this.#d.em();
    await this.#requireWriteAccess(() => em, patientId, writer, audit);
    if (!isUuid(recordId)) throw notFound("Record");
    const consultationId = paths.includes("consultation")
      ? await this.#consultationOf(() => em, patientId, input.consultation, writer, "record.consultation")
      : undefined;
    if (paths.includes("related_records"))
      await this.#requireRelated(() => em, patientId, input.relatedRecords, recordId);
    return em.transactional(async (tx) => {
      const row = await this.#lockAmendable(tx, patientId, recordId, input.etag, writer);
      requireMaskFitsKind(paths, row.kind);
      const key = this.#d.sealer.keyOf(row);
      const stored = this.#d.sealer.open(row, key);
      const next = clone(RecordSchema, stored);
      if (paths.includes("related_records")) next.relatedRecords = input.relatedRecords;
      if (paths.includes(row.kind)) {
        if (kindOfDetails(input) !== row.kind) throw invalidArgument(`record.${row.kind}`, "is required by the mask");
        next.details = (await this.#completed(patientId, input, stored)).details;
      }
      const now = this.#d.clock.now();
      let effectiveTime = new Date(row.effective_time);
      if (paths.includes("effective_time")) {
        effectiveTime =
          input.effectiveTime === undefined ? new Date(row.created_at) : timestampDate(input.effectiveTime);
      }
      await this.#d.repository.update(tx, row, {
        effectiveTime,
        consultationId: paths.includes("consultation") ? consultationId : (row.consultation_id ?? undefined),
        contentSealed: this.#d.sealer.seal(key, next),
        now,
      });
      await audit?.within(tx);
      await options.inTransaction?.(tx, row.id);
      const updated = await this.#d.repository.get(tx, patientId, row.id);
      if (updated === undefined) throw new Error("the updated record is not there");
      return recordToProto(updated, next);
    });
  }

  /** Makes the record a tombstone (the change feed hands devices its deletion). */
  async delete(
    patientId: string,
    recordId: string,
    etag: string,
    reason: string,
    writer: Writer,
    audit: WriteAudit | undefined,
    options: WriteOptions = {},
  ): Promise<void> {
    const em = this.#d.em();
    await this.#requireWriteAccess(() => em, patientId, writer, audit);
    if (!isUuid(recordId)) throw notFound("Record");
    await em.transactional(async (tx) => {
      const row = await this.#lockAmendable(tx, patientId, recordId, etag, writer);
      const key = this.#d.sealer.keyOf(row);
      await this.#d.repository.markDeleted(tx, row, this.#d.clock.now(), this.#d.sealer.sealDeleteReason(key, reason));
      await audit?.within(tx);
      await options.inTransaction?.(tx, row.id);
    });
  }

  /**
   * A create whose writer's access is the patient's liveness alone (anyone but a
   * doctor) and which names nothing else to check (no consultation, related records or
   * X-ray images): sealed at once and stored by its group's statement when that finds
   * the patient live and the request id new (`insertUnchecked`), without the checks'
   * round trip first. Otherwise (undefined when it does not qualify) what it sealed,
   * for the checked path, which gives every refusal and replay its usual answer.
   */
  async #createUnchecked(
    patientId: string,
    input: RecordProto,
    kind: AnyKind,
    requestId: string,
    writer: Writer,
    audit: WriteAudit | undefined,
    options: WriteOptions,
  ): Promise<{ created: RecordProto } | { sealed: Sealed } | undefined> {
    const qualifies =
      options.inTransaction === undefined &&
      audit instanceof CallAudit &&
      writer.role !== "doctor" &&
      input.details.case !== "xrayStudy" &&
      input.consultation === "" &&
      input.relatedRecords.length === 0 &&
      isUuid(patientId) &&
      kindRefusal(writer.role, kind) === undefined;
    if (!qualifies) return undefined;
    const sealed = this.#sealed(input, input, options);
    const row = newRow(patientId, kind as RecordKindName, input, requestId, writer, sealed, undefined);
    const outcome = await this.#d.creates.insertUnchecked(row, audit);
    return "stored" in outcome ? { created: recordToProto(outcome.stored, sealed.content) } : { sealed };
  }

  /** A new record's id, data key and sealed content (`completed`), and the fingerprint of its request. */
  #sealed(completed: RecordProto, request: RecordProto, options: WriteOptions): Sealed {
    // What is stored of it, sharing its fields with `completed` (nothing changes them
    // afterwards). conflict_of is output only: set by the sync upload, never taken from a client.
    const content = contentOf(completed);
    content.conflictOf = options.conflictOf ?? "";
    const now = this.#d.clock.now();
    const { id, key } = this.#newKeys.take(now);
    const contentSealed = this.#d.sealer.seal(key, content);
    return { id, now, key, content, contentSealed, fingerprint: this.#d.sealer.fingerprint(key, request) };
  }

  /**
   * The patient exists, and a doctor has a care relationship with them. A doctor
   * without one is told NOT_FOUND, as for a patient who does not exist, and the
   * refusal is audited as a denial.
   */
  async #requireWriteAccess(em: () => EntityManager, patientId: string, writer: Writer, audit: WriteAudit | undefined) {
    if (!isUuid(patientId) || !(await this.#livePatient.load(patientId))) throw notFound("Patient");
    if (writer.role !== "doctor") return;
    const related =
      writer.doctorId !== undefined && (await this.#d.repository.hasCareRelationship(em(), patientId, writer.doctorId));
    if (!related) {
      await audit?.record(AuditOutcome.DENIED, "NO_CARE_RELATIONSHIP", { subjectPatientId: patientId });
      throw notFound("Patient");
    }
  }

  async #lockAmendable(
    tx: EntityManager,
    patientId: string,
    recordId: string,
    etag: string,
    writer: Writer,
  ): Promise<RecordRow> {
    const row = await this.#d.repository.lock(tx, patientId, recordId);
    if (row === undefined) {
      if ((await this.#d.repository.summaryConsultation(tx, patientId, recordId)) !== undefined) {
        throw new DomainError(
          "failed-precondition",
          "SUMMARY_BELONGS_TO_CONSULTATION",
          "A consultation summary is changed through its consultation (ConsultationService.AttachConsultationSummary).",
        );
      }
      throw notFound("Record");
    }
    requireMayAmend(writer, { source: row.source, author: row.author });
    if (etag !== "" && etag !== etagOf(row.version)) {
      throw new DomainError(
        "aborted",
        "ETAG_MISMATCH",
        "The record changed since it was read. Get it again and retry with the new etag.",
      );
    }
    return row;
  }

  /** A retried create: the first result, unless the request id was used for different content. */
  #replay(row: RecordRow, input: RecordProto): RecordProto {
    const key = this.#d.sealer.keyOf(row);
    if (row.create_fingerprint !== this.#d.sealer.fingerprint(key, input) || row.deleted_at !== null) {
      throw new DomainError(
        "invalid-argument",
        "REQUEST_ID_REUSED",
        "This request_id was already used for another record (or one since deleted).",
        { violations: [{ field: "request_id", description: "was used for another record" }] },
      );
    }
    return recordToProto(row, this.#d.sealer.open(row, key));
  }

  /** The consultation id a record links to: one of this patient's, and for a doctor one of their own. */
  async #consultationOf(
    em: () => EntityManager,
    patientId: string,
    name: string,
    writer: Writer,
    field: string,
  ): Promise<string | undefined> {
    if (name === "") return undefined;
    const ids = consultationIdsOf(name);
    const consultation =
      ids !== undefined && ids.patientId === patientId && isUuid(ids.consultationId)
        ? await this.#d.repository.consultation(em(), ids.consultationId)
        : undefined;
    if (
      ids === undefined ||
      consultation === undefined ||
      consultation.patientId !== patientId ||
      (writer.role === "doctor" && consultation.doctorId !== writer.doctorId)
    ) {
      throw invalidArgument(field, "names no consultation of this patient (and, for a doctor, of theirs)");
    }
    return ids.consultationId;
  }

  async #requireRelated(
    em: () => EntityManager,
    patientId: string,
    names: readonly string[],
    self: string,
  ): Promise<void> {
    const ids: string[] = [];
    for (const name of names) {
      const parsed = recordIdsOf(name);
      if (
        parsed === undefined ||
        parsed.patientId !== patientId ||
        !isUuid(parsed.recordId) ||
        parsed.recordId === self
      ) {
        throw invalidArgument("record.related_records", "must name other records of this patient");
      }
      ids.push(parsed.recordId);
    }
    if (ids.length === 0) return;
    const found = await this.#d.repository.existing(em(), patientId, ids);
    if (found.size !== new Set(ids).size) {
      throw invalidArgument("record.related_records", "must name other records of this patient");
    }
  }

  /**
   * The content to store: what the caller sent, with an X-ray study's images (and
   * defaults for body part and view) from the X-ray Service. The study must be this
   * patient's; an unchanged study keeps the images already known.
   */
  async #completed(patientId: string, input: RecordProto, stored: RecordProto | undefined): Promise<RecordProto> {
    if (input.details.case !== "xrayStudy") return input;
    const given = input.details.value;
    const known = stored?.details.case === "xrayStudy" ? stored.details.value : undefined;
    const study = clone(XrayStudySchema, given);
    if (known !== undefined && known.study === given.study) {
      study.images = known.images;
    } else {
      const field = "record.xray_study.study";
      const found = await this.#d.xray.study(given.study, field);
      if (found.patientReference !== `patients/${patientId}`) {
        throw invalidArgument(field, "names no X-ray study of this patient");
      }
      study.bodyPart ||= found.bodyPart;
      study.view ||= found.view;
      study.images = found.images.map((image) =>
        create(XrayImageSchema, {
          image: image.name,
          contentType: image.contentType,
          sizeBytes: image.sizeBytes,
          sha256: image.sha256,
          widthPx: image.widthPx,
          heightPx: image.heightPx,
        }),
      );
    }
    const completed = clone(RecordSchema, input);
    completed.details = { case: "xrayStudy", value: study };
    return completed;
  }
}

/** The row a create stores. */
function newRow(
  patientId: string,
  kind: RecordKindName,
  input: RecordProto,
  requestId: string,
  writer: Writer,
  sealed: Sealed,
  consultationId: string | undefined,
): NewRecordRow {
  return {
    id: sealed.id,
    patientId,
    kind,
    effectiveTime: input.effectiveTime === undefined ? sealed.now : timestampDate(input.effectiveTime),
    consultationId,
    source: sourceOf(writer.role),
    author: writer.principal,
    authorRole: writer.role,
    contentSealed: sealed.contentSealed,
    dataKeyWrapped: sealed.key.wrapped,
    dataKeyId: sealed.key.keyId,
    createRequestId: requestId,
    createFingerprint: sealed.fingerprint,
    now: sealed.now,
  };
}
