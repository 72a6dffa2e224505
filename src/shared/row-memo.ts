import { LRUCache } from "lru-cache";

/**
 * What was derived from a database row (opened, decoded, mapped), kept per row id for
 * as long as the row reads back column for column the same: a changed, re-keyed or
 * tampered row misses and is derived again, so nothing stale or unverified is served.
 * The value is shared by every read that hits: `derive` must return something nobody
 * changes (frozen). Bounded, least recently used first out.
 */
export class RowMemo<Row extends { readonly id: string }, Value> {
  readonly #entries: LRUCache<string, { readonly row: Row; readonly value: Value }>;

  constructor(capacity: number) {
    this.#entries = new LRUCache({ max: Math.max(1, capacity) });
  }

  /** The value derived from `row`, from the memo when the same row was derived before; `derive`'s error otherwise. */
  get(row: Row, derive: (row: Row) => Value): Value {
    const hit = this.#entries.get(row.id);
    if (hit !== undefined && sameColumns(hit.row, row)) return hit.value;
    const value = derive(row);
    this.#entries.set(row.id, { row, value });
    return value;
  }
}

function sameColumns(a: object, b: object): boolean {
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  for (const key of keys) {
    const x = left[key];
    const y = right[key];
    if (x === y) continue;
    if (!(x instanceof Date && y instanceof Date && x.getTime() === y.getTime())) return false;
  }
  return true;
}
