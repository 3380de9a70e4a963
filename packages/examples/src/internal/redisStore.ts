/**
 * The Redis example's keyspace: 16 databases of strings, each value kept
 * encoded as its `GET` reply, with expiry done lazily (a read deletes an
 * expired key) and periodically (`Store.sweep`, which looks only at keys that
 * have an expiry, resuming where it stopped). Time is an argument.
 */
import type { Buffer } from "node:buffer"

/** How many databases `SELECT` chooses from (redis-server's default). */
export const databaseCount = 16

/** A value, kept encoded as its `GET` reply, and when it expires (`Infinity`: never). */
export interface Entry {
  readonly reply: Buffer
  expiresAt: number
}

/** One database: its keys, and the keys that have an expiry (the ones the periodic sweep looks at). */
export class Database {
  readonly entries = new Map<string, Entry>()
  readonly volatile = new Set<string>()
  /** Where the periodic sweep goes on, so each run looks at different keys. */
  cursor: Iterator<string> | undefined = undefined

  /** The live entry of `key`; an expired one is deleted on the way (lazy expiry). */
  lookup(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry !== undefined && entry.expiresAt <= now) {
      this.delete(key)
      return undefined
    }
    return entry
  }

  put(key: string, entry: Entry): void {
    this.entries.set(key, entry)
    if (entry.expiresAt === Infinity) this.volatile.delete(key)
    else this.volatile.add(key)
  }

  delete(key: string): boolean {
    this.volatile.delete(key)
    return this.entries.delete(key)
  }

  clear(): void {
    this.entries.clear()
    this.volatile.clear()
    this.cursor = undefined
  }
}

/** The keyspace shared by every connection of a server. */
export class Store {
  readonly databases: ReadonlyArray<Database> = Array.from({ length: databaseCount }, () => new Database())

  /**
   * The periodic half of expiry: looks at up to `budget` keys with an expiry
   * in each database, resuming where the previous sweep stopped, and deletes
   * the expired ones. Returns how many it deleted.
   */
  sweep(now: number, budget: number): number {
    let deleted = 0
    for (const db of this.databases) {
      if (db.volatile.size === 0) continue
      db.cursor ??= db.volatile.values()
      for (let looked = 0; looked < budget; looked++) {
        const next = db.cursor.next()
        if (next.done === true) {
          db.cursor = undefined
          break
        }
        const entry = db.entries.get(next.value)
        if (entry === undefined || entry.expiresAt <= now) {
          db.delete(next.value)
          deleted++
        }
      }
    }
    return deleted
  }
}
