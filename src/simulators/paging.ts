import { createHash } from "node:crypto";
import { invalidField } from "./simulator-errors.ts";

/** The paging fields every List request of the sibling contracts carries. */
export interface PageRequest {
  readonly pageSize: number;
  readonly pageToken: string;
}

/** How one list pages. */
export interface PageRules<T> {
  /** Binds tokens to one query (its filters), so a token cannot be replayed against another. */
  readonly scope: string;
  readonly defaultSize: number;
  readonly maxSize: number;
  /** The item's position in the list order, written into the token. */
  readonly cursorOf: (item: T) => string;
  /** True when the item comes after the cursor in the list order. */
  readonly isAfter: (item: T, cursor: string) => boolean;
}

/** One page and the token for the next; the token is empty on the last page. */
export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string;
}

/**
 * Keyset paging (AIP-158) over a list already in its order. The token holds the
 * last item's position rather than an offset, so items added or removed between
 * two calls neither repeat nor disappear from the pages after them.
 */
export function pageOf<T>(items: readonly T[], request: PageRequest, rules: PageRules<T>): Page<T> {
  const cursor = decodeToken(rules.scope, request.pageToken);
  const size = Math.min(request.pageSize > 0 ? request.pageSize : rules.defaultSize, rules.maxSize);
  const rest = cursor === undefined ? items : items.filter((item) => rules.isAfter(item, cursor));
  const page = rest.slice(0, size);
  const last = page.at(-1);
  const nextPageToken = rest.length > size && last !== undefined ? encodeToken(rules.scope, rules.cursorOf(last)) : "";
  return { items: page, nextPageToken };
}

function encodeToken(scope: string, cursor: string): string {
  return Buffer.from(JSON.stringify({ s: fingerprint(scope), c: cursor }), "utf8").toString("base64url");
}

/** Filters can hold personal data (a recipient's address); tokens carry only their hash. */
function fingerprint(scope: string): string {
  return createHash("sha256").update(scope).digest("base64url").slice(0, 16);
}

function decodeToken(scope: string, token: string): string | undefined {
  if (token === "") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { s?: unknown; c?: unknown };
    if (parsed.s === fingerprint(scope) && typeof parsed.c === "string") return parsed.c;
  } catch {
    // fall through: not a token of ours
  }
  throw invalidField("page_token", "not a page token of this list with these filters; start again without one");
}
