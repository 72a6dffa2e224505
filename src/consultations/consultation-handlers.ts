import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type ConsultationFeedback,
  ConsultationFeedbackSchema,
  PlatformFeedback_Category,
  PlatformFeedbackSchema,
} from "../../gen/telemed/patient/v1/consultation_pb.js";
import type { ConsultationService } from "../../gen/telemed/patient/v1/consultation_service_pb.js";
import { callAuditKey } from "../audit/call-audit.ts";
import { actingForKey } from "../rpc/context-keys.ts";
import { invalidArgument, notFound } from "../shared/domain-errors.ts";
import type { Booking } from "./booking.ts";
import { callerOf } from "./consultation-caller.ts";
import type { ConsultationDeps } from "./consultation-deps.ts";
import type { ConsultationLifecycle, Target } from "./consultation-lifecycle.ts";
import { consultationIdsOf, etagOf, modeFromProto, slotIdsOf } from "./consultation-mapping.ts";
import type { ConsultationReads } from "./consultation-reads.ts";
import type { DoctorDirectory } from "./doctor-directory.ts";
import type { PlatformFeedbackCategory } from "./feedback-entities.ts";
import type { Feedback, FeedbackStore } from "./feedback.ts";
import { reschedule } from "./rescheduling.ts";
import type { ConsultationSummaries } from "./consultation-summaries.ts";

/** The use cases behind ConsultationService. */
export interface ConsultationUseCases {
  readonly deps: ConsultationDeps;
  readonly booking: Booking;
  readonly lifecycle: ConsultationLifecycle;
  readonly reads: ConsultationReads;
  readonly directory: DoctorDirectory;
  readonly feedback: FeedbackStore;
  readonly summaries: ConsultationSummaries;
}

const categories: Record<number, PlatformFeedbackCategory> = {
  [PlatformFeedback_Category.USABILITY]: "usability",
  [PlatformFeedback_Category.BUG]: "bug",
  [PlatformFeedback_Category.PERFORMANCE]: "performance",
  [PlatformFeedback_Category.ACCESSIBILITY]: "accessibility",
  [PlatformFeedback_Category.OTHER]: "other",
};

/**
 * ConsultationService handlers: protobuf in, protobuf out. The pipeline already decided
 * who may call and for which patient (the policy in the contract); the use cases check
 * what depends on the consultation itself (its doctor, its state, the cut-off).
 */
export function consultationService(u: ConsultationUseCases): Partial<ServiceImpl<typeof ConsultationService>> {
  const audit = (context: HandlerContext) => context.values.get(callAuditKey);
  const caller = (context: HandlerContext) => callerOf(context, u.deps.doctors);
  const target = (name: string, etag: string): Target => {
    const { patientId, consultationId } = consultationIdsOf(name);
    return { patientId, consultationId, etag };
  };
  const out = (consultation: Parameters<ConsultationReads["toProto"]>[0]) => ({
    consultation: u.reads.toProto(consultation),
  });

  return {
    listDoctors: (request) => u.directory.list(request),
    getDoctor: async (request) => ({ doctor: await u.directory.get(request.name) }),
    listFreeSlots: (request) => u.directory.freeSlots(request),
    getDoctorRating: async (request) => ({ rating: await u.directory.rating(request.name) }),

    async createConsultation(request, context) {
      const actingFor = context.values.get(actingForKey);
      if (actingFor === undefined) throw notFound("Patient");
      const consultation = request.consultation;
      const { doctorId, slotId } = slotIdsOf(consultation?.slot ?? "");
      const booked = await u.booking.book(
        {
          patientId: actingFor.patientId,
          doctorId,
          slotId,
          mode: modeFromProto(consultation?.mode ?? 0),
          reason: consultation?.reason ?? "",
          requestId: request.requestId,
        },
        await caller(context),
        audit(context),
      );
      // Booked or replayed, the stored reason is this request's (booking.ts: the fingerprint).
      return { consultation: u.reads.toProto(booked, consultation?.reason ?? "") };
    },

    async getConsultation(request) {
      const { patientId, consultationId } = consultationIdsOf(request.name);
      return out(await u.reads.get(patientId, consultationId));
    },

    async listConsultations(request, context) {
      const page = await u.reads.list(request, await caller(context));
      return { consultations: page.items.map((c) => u.reads.toProto(c)), nextPageToken: page.next };
    },

    async cancelConsultation(request, context) {
      return out(
        await u.lifecycle.cancel(
          target(request.name, request.etag),
          request.reason,
          await caller(context),
          audit(context),
        ),
      );
    },

    async rescheduleConsultation(request, context) {
      const { patientId, consultationId } = consultationIdsOf(request.name);
      const { doctorId, slotId } = slotIdsOf(request.slot);
      const moved = await reschedule(
        u.deps,
        { patientId, consultationId, doctorId, slotId, etag: request.etag, requestId: request.requestId },
        await caller(context),
        audit(context),
      );
      return out(moved);
    },

    async getConsultationJoinDetails(request, context) {
      const { patientId, consultationId } = consultationIdsOf(request.name);
      return { joinDetails: await u.reads.joinDetails(patientId, consultationId, await caller(context)) };
    },

    async startConsultation(request, context) {
      return out(await u.lifecycle.start(target(request.name, request.etag), await caller(context), audit(context)));
    },

    async completeConsultation(request, context) {
      const completed = await u.lifecycle.complete(
        target(request.name, request.etag),
        request.summary,
        await caller(context),
        audit(context),
        randomUUID(),
      );
      return out(completed);
    },

    async markConsultationNoShow(request, context) {
      return out(
        await u.lifecycle.markNoShow(target(request.name, request.etag), await caller(context), audit(context)),
      );
    },

    async attachConsultationSummary(request, context) {
      const { consultation, summary } = await u.lifecycle.attachSummary(
        target(request.name, ""),
        request.summary ?? requiredSummary(),
        request.requestId,
        await caller(context),
        audit(context),
      );
      return {
        consultation: u.reads.toProto(consultation),
        summaryRecord: u.summaries.toRecord(summary, consultation),
      };
    },

    async createConsultationFeedback(request, context) {
      const { patientId, consultationId } = consultationIdsOf(request.parent);
      const given = await u.feedback.create(
        patientId,
        consultationId,
        request.feedback?.rating ?? 0,
        request.feedback?.comment ?? "",
        audit(context),
      );
      return { feedback: feedbackToProto(given) };
    },

    async getConsultationFeedback(request) {
      const { patientId, consultationId } = consultationIdsOf(request.name);
      return { feedback: feedbackToProto(await u.feedback.get(patientId, consultationId)) };
    },

    async updateConsultationFeedback(request, context) {
      const feedback = request.feedback;
      const { patientId, consultationId } = consultationIdsOf(feedback?.name ?? "");
      const paths = new Set(request.updateMask?.paths ?? []);
      const updated = await u.feedback.update(
        patientId,
        consultationId,
        {
          rating: paths.has("rating") ? feedback?.rating : undefined,
          comment: paths.has("comment") ? (feedback?.comment ?? "") : undefined,
        },
        feedback?.etag ?? "",
        audit(context),
      );
      return { feedback: feedbackToProto(updated) };
    },

    async createPlatformFeedback(request, context) {
      const actingFor = context.values.get(actingForKey);
      if (actingFor === undefined) throw notFound("Patient");
      const given = request.platformFeedback;
      const stored = await u.feedback.createPlatform(
        {
          patientId: actingFor.patientId,
          requestId: request.requestId,
          category: categories[given?.category ?? 0] ?? "other",
          rating: given?.rating ?? 0,
          comment: given?.comment ?? "",
          appVersion: given?.appVersion ?? "",
        },
        audit(context),
      );
      const recorded = create(PlatformFeedbackSchema, given);
      recorded.name = `patients/${actingFor.patientId}/platformFeedback/${stored.id}`;
      recorded.createTime = timestampFromMs(stored.createdAt.getTime());
      return { platformFeedback: recorded };
    },
  };
}

function feedbackToProto(feedback: Feedback): ConsultationFeedback {
  return create(ConsultationFeedbackSchema, {
    name: `patients/${feedback.patientId}/consultations/${feedback.consultationId}/feedback`,
    rating: feedback.rating,
    comment: feedback.comment,
    editDeadline: timestampFromMs(feedback.editDeadline.getTime()),
    createTime: timestampFromMs(feedback.createdAt.getTime()),
    updateTime: timestampFromMs(feedback.updatedAt.getTime()),
    etag: etagOf(feedback.version),
  });
}

/** protovalidate requires the summary; this keeps the type honest. */
function requiredSummary(): never {
  throw invalidArgument("summary", "is required");
}
