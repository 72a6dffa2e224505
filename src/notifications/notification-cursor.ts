import { DomainError } from "../shared/domain-errors.ts";

/**
 * Stream cursors: opaque to clients, a recipient's sequence inside. The prefix is a
 * format version, so the encoding can change without old cursors being misread.
 */
export function encodeCursor(sequence: number): string {
  return `n1.${sequence.toString(36)}`;
}

/** The sequence a cursor names; 0 for the empty cursor is the caller's business (undefined). */
export function decodeCursor(cursor: string): number | undefined {
  if (cursor === "") return undefined;
  const match = /^n1\.([0-9a-z]{1,11})$/.exec(cursor);
  const sequence = match === null ? Number.NaN : Number.parseInt(match[1] as string, 36);
  if (!Number.isSafeInteger(sequence) || sequence < 0) throw invalidCursor();
  return sequence;
}

/** A cursor we did not make, or one of another stream. */
export function invalidCursor(): DomainError {
  return new DomainError(
    "invalid-argument",
    "INVALID_CURSOR",
    "The cursor is not one of this notification stream; watch again without a cursor, or with one it sent.",
    { violations: [{ field: "cursor", description: "not a cursor of this stream" }] },
  );
}
