/**
 * The memcached example's cache: items by key with their flags, expiration
 * time and cas unique, a memory limit enforced by evicting the least recently
 * used items (memcached's `-m`), `flush_all` with or without a delay, and the
 * counters `stats` reports. Time comes from the `now` function given (the
 * example passes Effect's `Clock`), so tests drive it with `TestClock`.
 *
 * Expiration is checked when an item is looked up (and an expired item is
 * dropped then), as memcached does; the LRU order is a `Map`'s insertion
 * order, refreshed on every hit.
 */
import { maxRelativeExptime } from "./memcachedParser.ts"

/** One stored item. */
export interface Item {
  readonly value: Uint8Array
  /** The client's opaque 32-bit flags. */
  readonly flags: number
  /** When it expires, in milliseconds since the epoch; 0 for never. */
  readonly expiresAt: number
  /** Its cas unique, new on every change. */
  readonly cas: number
  /** When it was last stored or changed (a delayed `flush_all` drops items older than its time). */
  readonly storedAt: number
}

/** The counters `stats` reports, each named as memcached names it; written once here. */
export const counterNames = [
  "total_items",
  "total_connections",
  "cmd_get",
  "cmd_set",
  "cmd_flush",
  "cmd_touch",
  "get_hits",
  "get_misses",
  "get_expired",
  "get_flushed",
  "delete_misses",
  "delete_hits",
  "incr_misses",
  "incr_hits",
  "decr_misses",
  "decr_hits",
  "cas_misses",
  "cas_hits",
  "cas_badval",
  "touch_hits",
  "touch_misses",
  "evictions",
  "bytes_read",
  "bytes_written"
] as const

/** A counter's name. */
export type CounterName = (typeof counterNames)[number]

/** The counters, by name. */
export type Counters = Record<CounterName, number>

/** What a store needs. */
export interface StoreOptions {
  /** The current time in milliseconds since the epoch. */
  readonly now: () => number
  /** Bytes the items may take (memcached's `-m`, counted as key + value + 48 bytes each). */
  readonly memoryLimit: number
}

// About what memcached's item header costs, so that many tiny items still count.
const itemOverhead = 48

const zeroCounters = (): Counters => Object.fromEntries(counterNames.map((name) => [name, 0])) as Counters

/** The cache shared by every connection of one server. */
export class Store {
  readonly counters: Counters = zeroCounters()
  /** Connections open now (`curr_connections`). */
  connections = 0
  /** The last `verbosity` level set (kept for `stats settings`; the example logs the same at every level). */
  verbosity = 0
  /** Bytes the items take now (`bytes`). */
  bytes = 0
  /** When the store was made, in milliseconds (for `uptime`). */
  readonly startedAt: number
  readonly memoryLimit: number
  readonly now: () => number
  private readonly items = new Map<string, Item>()
  private lastCas = 0
  // A delayed flush_all: once `now` reaches it, items stored before it are gone.
  private flushAt = -1

  constructor(options: StoreOptions) {
    this.now = options.now
    this.memoryLimit = options.memoryLimit
    this.startedAt = options.now()
  }

  /** Items stored now, expired ones not yet noticed included (`curr_items`). */
  get size(): number {
    return this.items.size
  }

  /**
   * The expiration time of an `exptime` given by a client, in milliseconds: 0
   * for never, `undefined` when it is already past (negative, or an absolute
   * time not in the future). Up to 30 days it counts from now; beyond, it is a
   * unix time.
   */
  expiresAt(exptime: number, now: number): number | undefined {
    if (exptime === 0) return 0
    if (exptime < 0) return undefined
    const at = exptime > maxRelativeExptime ? exptime * 1000 : now + exptime * 1000
    return at > now ? at : undefined
  }

  /**
   * The live item under `key`, refreshed in the LRU order; an expired or
   * flushed one is dropped (and counted when `counting`, for retrievals).
   */
  get(key: string, counting = false): Item | undefined {
    const item = this.items.get(key)
    if (item === undefined) return undefined
    const now = this.now()
    if (item.expiresAt !== 0 && item.expiresAt <= now) {
      this.remove(key, item)
      if (counting) this.counters.get_expired++
      return undefined
    }
    if (this.flushAt >= 0 && now >= this.flushAt && item.storedAt < this.flushAt) {
      this.remove(key, item)
      if (counting) this.counters.get_flushed++
      return undefined
    }
    this.items.delete(key)
    this.items.set(key, item)
    return item
  }

  /**
   * Stores `value` under `key` with a new cas unique (and counts it). An
   * `expiresAt` of `undefined` means already expired: the key is left empty,
   * as memcached stores an item nobody can fetch.
   */
  put(key: string, value: Uint8Array, flags: number, expiresAt: number | undefined): Item | undefined {
    const old = this.items.get(key)
    if (old !== undefined) this.remove(key, old)
    this.counters.total_items++
    if (expiresAt === undefined) return undefined
    const item: Item = { value, flags, expiresAt, cas: ++this.lastCas, storedAt: this.now() }
    this.items.set(key, item)
    this.bytes += sizeOf(key, item)
    this.evict(key)
    return item
  }

  /** Gives a live item a new value in place (`incr`/`decr`): same flags and expiration, a new cas unique. */
  update(key: string, item: Item, value: Uint8Array): void {
    this.bytes += value.length - item.value.length
    this.items.set(key, { ...item, value, cas: ++this.lastCas, storedAt: this.now() })
  }

  /** Sets a live item's expiration time; `undefined` (already past) removes it. */
  touch(key: string, item: Item, expiresAt: number | undefined): void {
    if (expiresAt === undefined) this.remove(key, item)
    else this.items.set(key, { ...item, expiresAt })
  }

  /** Removes `key`; true when a live item was there. */
  delete(key: string): boolean {
    const item = this.get(key)
    if (item === undefined) return false
    this.remove(key, item)
    return true
  }

  /**
   * `flush_all`: with no delay every item is dropped now; with one, every item
   * stored before that time is dropped once it comes.
   */
  flush(delay: number): void {
    const now = this.now()
    const at = delay > 0 ? this.expiresAt(delay, now) : undefined
    if (at === undefined || at === 0) {
      this.items.clear()
      this.bytes = 0
      this.flushAt = -1
    } else {
      this.flushAt = at
    }
  }

  /** `stats reset`: every counter back to zero. */
  resetCounters(): void {
    for (const name of counterNames) this.counters[name] = 0
  }

  private remove(key: string, item: Item): void {
    this.items.delete(key)
    this.bytes -= sizeOf(key, item)
  }

  // Drops the least recently used items (never `keep`, just stored) until under the limit.
  private evict(keep: string): void {
    if (this.bytes <= this.memoryLimit) return
    for (const [key, item] of this.items) {
      if (this.bytes <= this.memoryLimit) break
      if (key === keep) continue
      this.remove(key, item)
      if (item.expiresAt === 0 || item.expiresAt > this.now()) this.counters.evictions++
    }
  }
}

const sizeOf = (key: string, item: Item): number => key.length + item.value.length + itemOverhead
