import type { Redis } from "ioredis";

/**
 * A cache of consultations by id whose entries are ordered by the row's version, so
 * a stale value can never win a race against a change:
 *
 * - `populate(id, version, value)` (after a database read) stores the value only when
 *   the entry holds an older version or nothing; a reader that read version 3 before
 *   a change committed version 4 cannot put 3 back.
 * - `invalidate(id, version)` (inside the change's transaction, before its commit, and
 *   again after it) leaves a marker at the new version: until the marker expires, only
 *   that version or a newer one can be cached, and reads miss meanwhile. If the change
 *   rolls back the marker only causes misses.
 *
 * Each step is one atomic compare-and-set (a Lua script in Redis). Entries and markers
 * expire after `ttlMs`, which bounds any damage of a lost invalidation.
 */
export interface StatusCache {
  get(id: string): Promise<string | undefined>;
  populate(id: string, version: number, value: string): Promise<void>;
  invalidate(id: string, version: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * `version|value`; an empty value is an invalidation marker. A value may replace an
 * older entry or a marker of its own version, nothing newer.
 */
const populateScript = `
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  local wanted = tonumber(ARGV[1])
  local marker = string.sub(current, -1) == '|'
  if version and (version > wanted or (version == wanted and not marker)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1`;

const invalidateScript = `
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  if version and version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|', 'PX', ARGV[2])
return 1`;

/** The cache in Redis, shared by every replica. */
export class RedisStatusCache implements StatusCache {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #ownsConnection: boolean;

  constructor(redis: Redis, keyPrefix: string, ttlMs: number, ownsConnection: boolean) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
    this.#ttlMs = ttlMs;
    this.#ownsConnection = ownsConnection;
  }

  async get(id: string): Promise<string | undefined> {
    return storedValue(await this.#redis.get(this.#prefix + id));
  }

  async populate(id: string, version: number, value: string): Promise<void> {
    await this.#redis.eval(populateScript, 1, this.#prefix + id, String(version), value, String(this.#ttlMs));
  }

  async invalidate(id: string, version: number): Promise<void> {
    await this.#redis.eval(invalidateScript, 1, this.#prefix + id, String(version), String(this.#ttlMs));
  }

  async close(): Promise<void> {
    if (this.#ownsConnection) this.#redis.disconnect();
  }
}

const maxMemoryEntries = 50_000;

/** The same rules in this process, for the embedded default (one instance, nothing to share). */
export class MemoryStatusCache implements StatusCache {
  readonly #entries = new Map<string, { version: number; value: string; expiresMs: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  async get(id: string): Promise<string | undefined> {
    const entry = this.#live(id);
    return entry === undefined || entry.value === "" ? undefined : entry.value;
  }

  async populate(id: string, version: number, value: string): Promise<void> {
    const entry = this.#live(id);
    if (entry !== undefined && (entry.version > version || (entry.version === version && entry.value !== ""))) return;
    this.#set(id, version, value);
  }

  async invalidate(id: string, version: number): Promise<void> {
    const entry = this.#live(id);
    if (entry !== undefined && entry.version > version) return;
    this.#set(id, version, "");
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }

  #live(id: string) {
    const entry = this.#entries.get(id);
    if (entry !== undefined && entry.expiresMs <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    return entry;
  }

  #set(id: string, version: number, value: string): void {
    // Bounded: when full, the oldest value goes. Markers never do (losing one would let
    // a stale read back in); a value that finds no room is simply not cached.
    if (this.#entries.size >= maxMemoryEntries && !this.#entries.has(id)) {
      for (const [key, entry] of this.#entries) {
        if (entry.value !== "" || entry.expiresMs <= this.#now()) {
          this.#entries.delete(key);
          break;
        }
      }
      if (this.#entries.size >= maxMemoryEntries && value !== "") return;
    }
    this.#entries.set(id, { version, value, expiresMs: this.#now() + this.#ttlMs });
  }
}

function storedValue(stored: string | null): string | undefined {
  if (stored === null) return undefined;
  const bar = stored.indexOf("|");
  const value = bar < 0 ? "" : stored.slice(bar + 1);
  return value === "" ? undefined : value;
}
