import { invalidArgument } from "../shared/domain-errors.ts";

/**
 * Opaque page tokens (AIP-158): the cursor of the last item, bound to the list it
 * came from so a token cannot be replayed against another query. The content is
 * not secret; a token that does not decode is INVALID_ARGUMENT.
 */
export function encodePageToken(scope: string, cursor: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify({ s: scope, c: cursor }), "utf8").toString("base64url");
}

/** Decodes a token made by `encodePageToken` for the same scope; undefined for an empty token. */
export function decodePageToken(scope: string, token: string): Record<string, string | number> | undefined {
  if (token === "") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { s?: unknown; c?: unknown };
    if (parsed.s === scope && typeof parsed.c === "object" && parsed.c !== null) {
      return parsed.c as Record<string, string | number>;
    }
  } catch {
    // fall through: a token we did not make
  }
  throw invalidArgument("page_token", "not a page token of this list; start again without one");
}
