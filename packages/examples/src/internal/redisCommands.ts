/**
 * The Redis example's commands: one function from a command's arguments and
 * a connection's session to the reply's bytes, over the keyspace of
 * `redisStore.ts`. Both callback kinds of `redis.ts` call it, so
 * they answer byte for byte alike. No sockets and no Effect here: time is an
 * argument (`now`, in milliseconds), so tests drive expiry by hand.
 *
 * Replies and error texts follow redis-server 7.
 */
import { Buffer } from "node:buffer"
import { type Database, databaseCount, type Entry, Store } from "./redisStore.ts"
import * as Resp from "./resp.ts"

export { databaseCount, Store }

/** What a connection remembers between its commands. */
export interface Session {
  /** The database `SELECT` chose (0 at first). */
  db: number
  /** Set by `QUIT` (and by a protocol error): reply, then close; later commands are not run. */
  closing: boolean
}

/** A fresh session: database 0. */
export const session = (): Session => ({ db: 0, closing: false })

const text = (bytes: Uint8Array): string =>
  (bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString("latin1")

const OK = Resp.simple("OK")
const PONG = Resp.simple("PONG")
const emptyArray = Resp.array([])
const notInteger = Resp.error("ERR value is not an integer or out of range")
const syntaxError = Resp.error("ERR syntax error")
const wrongArity = (name: string) => Resp.error(`ERR wrong number of arguments for '${name}' command`)

const int64Pattern = /^(0|-?[1-9][0-9]{0,18})$/
const int64Max = 2n ** 63n - 1n
const int64Min = -(2n ** 63n)
/** A signed 64-bit integer written as redis-server's `string2ll` accepts it (no `+`, spaces or leading zeros). */
export const parseInteger = (bytes: Uint8Array): bigint | undefined => {
  if (bytes.length === 0 || bytes.length > 20) return undefined
  const s = text(bytes)
  if (!int64Pattern.test(s)) return undefined
  const n = BigInt(s)
  return n > int64Max || n < int64Min ? undefined : n
}

/** The value of an entry: its reply without the `$len\r\n` header and the final `\r\n`. */
const entryValue = (entry: Entry): Buffer => entry.reply.subarray(entry.reply.indexOf(10) + 1, entry.reply.length - 2)

/** An expiry in `seconds` (or milliseconds) from `now`, or undefined when redis-server would call it invalid. */
const expiryAt = (amount: bigint, unitMillis: 1 | 1000, now: number): number | undefined =>
  amount > int64Max / BigInt(unitMillis) || amount < int64Min / BigInt(unitMillis)
    ? undefined
    : now + Number(amount) * unitMillis

interface Context {
  readonly store: Store
  readonly session: Session
  readonly db: Database
  readonly now: number
}

type Run = (context: Context, args: ReadonlyArray<Uint8Array>) => Buffer

const set: Run = ({ db, now }, args) => {
  let condition: "nx" | "xx" | undefined
  let expiry: { readonly amount: bigint; readonly unit: 1 | 1000 } | undefined
  for (let i = 3; i < args.length; i++) {
    const option = text(args[i]!).toLowerCase()
    if ((option === "nx" || option === "xx") && condition === undefined) condition = option
    else if ((option === "ex" || option === "px") && expiry === undefined && i + 1 < args.length) {
      const amount = parseInteger(args[++i]!)
      if (amount === undefined) return notInteger
      expiry = { amount, unit: option === "ex" ? 1000 : 1 }
    } else return syntaxError
  }
  let expiresAt = Infinity
  if (expiry !== undefined) {
    const at = expiry.amount <= 0n ? undefined : expiryAt(expiry.amount, expiry.unit, now)
    if (at === undefined) return Resp.error("ERR invalid expire time in 'set' command")
    expiresAt = at
  }
  const key = text(args[1]!)
  if (condition !== undefined && (db.lookup(key, now) !== undefined) !== (condition === "xx")) return Resp.nullBulk
  db.put(key, { reply: Resp.bulk(args[2]!), expiresAt })
  return OK
}

/**
 * A value of at most 15 characters in `string2ll`'s format, as a number (exact:
 * below 2^53); `undefined` for anything else, which the BigInt path then judges.
 * INCR's common case stays off BigInt.
 */
const parseSmall = (bytes: Uint8Array): number | undefined => {
  const length = bytes.length
  if (length === 0 || length > 15) return undefined
  const negative = bytes[0] === 45
  let i = negative ? 1 : 0
  if (i === length || (bytes[i] === 48 && length > 1)) return undefined
  let value = 0
  for (; i < length; i++) {
    const digit = bytes[i]! - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return negative ? -value : value
}

const smallLimit = 2n ** 52n

const incrementBy = ({ db, now }: Context, keyBytes: Uint8Array, by: bigint): Buffer => {
  const key = text(keyBytes)
  const entry = db.lookup(key, now)
  // INCR keeps the key's expiry, as redis-server does.
  const expiresAt = entry?.expiresAt ?? Infinity
  const small = entry === undefined ? 0 : parseSmall(entryValue(entry))
  if (small !== undefined && by < smallLimit && by > -smallLimit) {
    const result = small + Number(by)
    db.put(key, { reply: Resp.bulk(String(result)), expiresAt })
    return Resp.integer(result)
  }
  const current = entry === undefined ? 0n : parseInteger(entryValue(entry))
  if (current === undefined) return notInteger
  const result = current + by
  if (result > int64Max || result < int64Min) return Resp.error("ERR increment or decrement would overflow")
  db.put(key, { reply: Resp.bulk(String(result)), expiresAt })
  return Resp.integer(result)
}

const incrementByArg =
  (sign: 1n | -1n): Run =>
  (context, args) => {
    const by = parseInteger(args[2]!)
    return by === undefined ? notInteger : incrementBy(context, args[1]!, sign * by)
  }

const timeToLive =
  (unitMillis: 1 | 1000): Run =>
  ({ db, now }, args) => {
    const entry = db.lookup(text(args[1]!), now)
    if (entry === undefined) return Resp.integer(-2)
    if (entry.expiresAt === Infinity) return Resp.integer(-1)
    const left = Math.max(0, entry.expiresAt - now)
    return Resp.integer(unitMillis === 1 ? left : Math.floor((left + 500) / 1000))
  }

/** The configuration `CONFIG GET` reports: what redis-benchmark and redis-cli ask for. */
const configuration: ReadonlyArray<readonly [string, string]> = [
  ["save", ""],
  ["appendonly", "no"],
  ["databases", String(databaseCount)],
  ["timeout", "0"]
]

/** redis-server's `stringmatch` for `CONFIG GET` patterns, case-insensitive: `*`, `?`, `[a-z]`, `[^x]`, `\x`. */
export const globMatch = (pattern: string, name: string): boolean => {
  const match = (p: number, s: number): boolean => {
    while (p < pattern.length) {
      const c = pattern[p]!
      if (c === "*") {
        for (let k = s; k <= name.length; k++) if (match(p + 1, k)) return true
        return false
      }
      if (s >= name.length) return false
      if (c === "?") {
        p++
        s++
        continue
      }
      if (c === "[") {
        let q = p + 1
        const negate = pattern[q] === "^"
        if (negate) q++
        let found = false
        for (; q < pattern.length && pattern[q] !== "]"; q++) {
          if (pattern[q] === "\\" && q + 1 < pattern.length) q++
          if (pattern[q + 1] === "-" && q + 2 < pattern.length && pattern[q + 2] !== "]") {
            if (pattern[q]! <= name[s]! && name[s]! <= pattern[q + 2]!) found = true
            q += 2
          } else if (pattern[q] === name[s]) found = true
        }
        if (found === negate) return false
        p = q + 1
        s++
        continue
      }
      const literal = c === "\\" && p + 1 < pattern.length ? pattern[++p]! : c
      if (literal !== name[s]) return false
      p++
      s++
    }
    return s === name.length
  }
  return match(0, 0)
}

const config: Run = (_, args) => {
  const sub = text(args[1]!).toLowerCase()
  if (sub !== "get") return Resp.error(`ERR unknown subcommand '${text(args[1]!)}'. Try CONFIG HELP.`)
  if (args.length < 3) return wrongArity("config|get")
  const patterns = args.slice(2).map((arg) => text(arg).toLowerCase())
  const found = configuration.filter(([name]) => patterns.some((pattern) => globMatch(pattern, name)))
  return Resp.bulkArray(found.flat())
}

const command: Run = (_, args) => {
  if (args.length === 1) return emptyArray
  const sub = text(args[1]!).toLowerCase()
  if (sub === "count") return Resp.integer(commands.size)
  // No command documentation is served: redis-cli then uses its own built-in help.
  if (sub === "docs" || sub === "info" || sub === "list") return emptyArray
  return Resp.error(`ERR unknown subcommand '${text(args[1]!)}'. Try COMMAND HELP.`)
}

/**
 * The commands: redis-server's arity convention (`n`: exactly n words with
 * the name, `-n`: at least n) and what they do.
 */
const commands = new Map<string, { readonly arity: number; readonly run: Run }>([
  [
    "ping",
    { arity: -1, run: (_, args) => (args.length > 2 ? wrongArity("ping") : args[1] ? Resp.bulk(args[1]) : PONG) }
  ],
  ["echo", { arity: 2, run: (_, args) => Resp.bulk(args[1]!) }],
  ["set", { arity: -3, run: set }],
  ["get", { arity: 2, run: ({ db, now }, args) => db.lookup(text(args[1]!), now)?.reply ?? Resp.nullBulk }],
  [
    "del",
    { arity: -2, run: ({ db, now }, args) => Resp.integer(count(args, (key) => live(db, key, now) && db.delete(key))) }
  ],
  ["exists", { arity: -2, run: ({ db, now }, args) => Resp.integer(count(args, (key) => live(db, key, now))) }],
  ["incr", { arity: 2, run: (context, args) => incrementBy(context, args[1]!, 1n) }],
  ["decr", { arity: 2, run: (context, args) => incrementBy(context, args[1]!, -1n) }],
  ["incrby", { arity: 3, run: incrementByArg(1n) }],
  ["decrby", { arity: 3, run: incrementByArg(-1n) }],
  [
    "mget",
    {
      arity: -2,
      run: ({ db, now }, args) => Resp.array(args.slice(1).map((k) => db.lookup(text(k), now)?.reply ?? Resp.nullBulk))
    }
  ],
  [
    "mset",
    {
      arity: -3,
      run: ({ db }, args) => {
        if (args.length % 2 === 0) return wrongArity("mset")
        for (let i = 1; i < args.length; i += 2)
          db.put(text(args[i]!), { reply: Resp.bulk(args[i + 1]!), expiresAt: Infinity })
        return OK
      }
    }
  ],
  [
    "expire",
    {
      arity: 3,
      run: ({ db, now }, args) => {
        const seconds = parseInteger(args[2]!)
        if (seconds === undefined) return notInteger
        const at = expiryAt(seconds, 1000, now)
        if (at === undefined) return Resp.error("ERR invalid expire time in 'expire' command")
        const key = text(args[1]!)
        const entry = db.lookup(key, now)
        if (entry === undefined) return Resp.integer(0)
        // An expiry in the past deletes the key at once, as redis-server does.
        if (at <= now) db.delete(key)
        else db.put(key, { reply: entry.reply, expiresAt: at })
        return Resp.integer(1)
      }
    }
  ],
  ["ttl", { arity: 2, run: timeToLive(1000) }],
  ["pttl", { arity: 2, run: timeToLive(1) }],
  [
    "select",
    {
      arity: 2,
      run: ({ session }, args) => {
        const index = parseInteger(args[1]!)
        if (index === undefined) return notInteger
        if (index > 2147483647n || index < -2147483648n) {
          return Resp.error("ERR value is out of range, value must between -2147483648 and 2147483647")
        }
        if (index < 0n || index >= BigInt(databaseCount)) return Resp.error("ERR DB index is out of range")
        session.db = Number(index)
        return OK
      }
    }
  ],
  ["dbsize", { arity: 1, run: ({ db }) => Resp.integer(db.entries.size) }],
  [
    "flushdb",
    {
      arity: -1,
      run: ({ db }) => {
        db.clear()
        return OK
      }
    }
  ],
  [
    "quit",
    {
      arity: -1,
      run: ({ session }) => {
        session.closing = true
        return OK
      }
    }
  ],
  ["config", { arity: -2, run: config }],
  ["command", { arity: -1, run: command }]
])

const live = (db: Database, key: string, now: number): boolean => db.lookup(key, now) !== undefined

const count = (args: ReadonlyArray<Uint8Array>, test: (key: string) => boolean): number => {
  let n = 0
  for (let i = 1; i < args.length; i++) if (test(text(args[i]!))) n++
  return n
}

/** redis-server's reply to an unknown command: the name and the first arguments, within 128 characters each. */
const unknownCommand = (args: ReadonlyArray<Uint8Array>): Buffer => {
  let quoted = ""
  for (let i = 1; i < args.length && quoted.length < 128; i++)
    quoted += `'${text(args[i]!).slice(0, 128 - quoted.length)}' `
  return Resp.error(`ERR unknown command '${text(args[0]!).slice(0, 128)}', with args beginning with: ${quoted}`)
}

/**
 * Runs one command (`args[0]` is its name, in any case) for `session` over
 * `store` at time `now` (milliseconds), and returns the reply's bytes.
 * `QUIT` sets `session.closing`; the caller closes after writing the reply.
 */
export const execute = (store: Store, session: Session, args: ReadonlyArray<Uint8Array>, now: number): Buffer => {
  if (args.length === 0) return Resp.error("ERR empty command")
  const name = text(args[0]!).toLowerCase()
  const spec = commands.get(name)
  if (spec === undefined) return unknownCommand(args)
  if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return wrongArity(name)
  return spec.run({ store, session, db: store.databases[session.db]!, now }, args)
}
