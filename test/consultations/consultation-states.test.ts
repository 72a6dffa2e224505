import { describe, expect, it } from "vitest";
import {
  dueReminderOffset,
  requireBeforeCutoff,
  requireFeedbackEditable,
  requireJoinOpen,
} from "../../src/consultations/consultation-rules.ts";
import {
  type ConsultationEvent,
  type ConsultationState,
  consultationEvents,
  consultationStates,
  isFinal,
  stateAfter,
  transition,
} from "../../src/consultations/consultation-states.ts";
import { DomainError } from "../../src/shared/domain-errors.ts";

const allowed: Record<string, ConsultationState> = {
  "requested confirm": "scheduled",
  "requested cancel": "cancelled",
  "scheduled cancel": "cancelled",
  "scheduled reschedule": "scheduled",
  "scheduled start": "ongoing",
  "scheduled mark_no_show": "no_show",
  "ongoing complete": "completed",
  "ongoing attach_summary": "ongoing",
  "completed attach_summary": "completed",
};

describe("the consultation state machine", () => {
  it("allows exactly the documented transitions (every state × every event)", () => {
    for (const state of consultationStates) {
      for (const event of consultationEvents) {
        expect(stateAfter(state, event), `${state} ${event}`).toBe(allowed[`${state} ${event}`]);
      }
    }
  });

  it("an illegal transition is FAILED_PRECONDITION INVALID_STATE_TRANSITION with the state in metadata", () => {
    const illegal: Array<[ConsultationState, ConsultationEvent]> = [
      ["completed", "cancel"],
      ["cancelled", "start"],
      ["requested", "start"],
      ["ongoing", "cancel"],
      ["no_show", "complete"],
      ["scheduled", "complete"],
    ];
    for (const [state, event] of illegal) {
      const error = (() => {
        try {
          transition(state, event);
        } catch (thrown) {
          return thrown;
        }
      })();
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ kind: "failed-precondition", reason: "INVALID_STATE_TRANSITION" });
      expect((error as DomainError).metadata.state).toBe(state.toUpperCase());
    }
  });

  it("completed, cancelled and no-show are final", () => {
    expect(consultationStates.filter(isFinal)).toEqual(["completed", "cancelled", "no_show"]);
  });
});

describe("time rules", () => {
  const start = Date.parse("2030-01-08T10:00:00Z");
  const hour = 3_600_000;

  it("the cut-off: allowed up to the deadline, refused after it", () => {
    expect(() => requireBeforeCutoff(start - hour, start, hour)).not.toThrow();
    expect(() => requireBeforeCutoff(start - hour + 1, start, hour)).toThrow(
      expect.objectContaining({ reason: "CHANGE_CUTOFF_PASSED" }),
    );
  });

  it("the join window opens at start minus the window", () => {
    expect(() => requireJoinOpen(start - 15 * 60_000 - 1, start, 15 * 60_000)).toThrow(
      expect.objectContaining({ reason: "JOIN_NOT_OPEN_YET" }),
    );
    expect(() => requireJoinOpen(start - 15 * 60_000, start, 15 * 60_000)).not.toThrow();
  });

  it("feedback is editable until its deadline", () => {
    expect(() => requireFeedbackEditable(1000, 1000)).not.toThrow();
    expect(() => requireFeedbackEditable(1001, 1000)).toThrow(
      expect.objectContaining({ reason: "FEEDBACK_EDIT_WINDOW_CLOSED" }),
    );
  });

  describe("which reminder is due", () => {
    const offsets = [86_400, 900];
    const booked = start - 3 * 86_400_000;
    const at = (ms: number, sent: number[] = []) =>
      dueReminderOffset({ startMs: start, bookedMs: booked }, offsets, new Set(sent), ms);

    it("none before the first offset, the 24 h one at its time, the 15 min one at its time", () => {
      expect(at(start - 86_400_000 - 1)).toBeUndefined();
      expect(at(start - 86_400_000)).toBe(86_400);
      expect(at(start - 86_400_000 + hour, [86_400])).toBeUndefined();
      expect(at(start - 900_000, [86_400])).toBe(900);
      expect(at(start - 60_000, [86_400, 900])).toBeUndefined();
    });

    it("when both are due (the service was down) only the nearest goes, and never after the start", () => {
      expect(at(start - 600_000)).toBe(900);
      expect(at(start)).toBeUndefined();
    });

    it("an offset whose time came before the booking is skipped", () => {
      const late = dueReminderOffset(
        { startMs: start, bookedMs: start - hour },
        offsets,
        new Set(),
        start - hour + 1000,
      );
      expect(late).toBeUndefined();
    });
  });
});
