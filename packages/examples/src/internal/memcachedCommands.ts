/**
 * The memcached example's command logic, shared by both callback kinds: a
 * pure function from one frame (as `memcachedDecoder.ts` cuts them) and the
 * store to the reply's bytes, or a `Close` when the connection must end
 * (`quit`, a refused line). Replies follow memcached's `doc/protocol.txt`;
 * where it is silent, memcached 1.6's own behaviour.
 */
import { latin1, lineEnd } from "./memcachedDecoder.ts"
import { type Command, errors, parseCommand, type StoreOp } from "./memcachedParser.ts"
import type { Item, Store } from "./memcachedStore.ts"

/** The end of a connection, after `reply` when there is one. */
export class Close {
  readonly reply: string | undefined
  constructor(reply: string | undefined) {
    this.reply = reply
  }
}

/** What a frame asks the connection to do: write these bytes, write nothing, or close. */
export type Outcome = Uint8Array | string | Close | undefined

/** Settings of the command logic. */
export interface CommandOptions {
  /** The largest value accepted (memcached's `-I`). */
  readonly maxItemSize: number
  /** What `version` and `stats` report. */
  readonly version: string
  /** The process id `stats` reports. */
  readonly pid: number
}

const LF = 0x0a
const CR = 0x0d
const maxU64 = (1n << 64n) - 1n
const CRLF = Buffer.from("\r\n")
const END = Buffer.from("END\r\n")

const STORED = "STORED\r\n"
const NOT_STORED = "NOT_STORED\r\n"
const EXISTS = "EXISTS\r\n"
const NOT_FOUND = "NOT_FOUND\r\n"
const DELETED = "DELETED\r\n"
const TOUCHED = "TOUCHED\r\n"
const OK = "OK\r\n"
const line = (text: string) => `${text}\r\n`
const quit = new Close(undefined)
const lineTooLong = new Close(line(errors.lineTooLong))

// What strtoull takes from the start of a stored value: whitespace, a `+`, digits, then whitespace or the end.
const numericValue = /^[\t\n\v\f\r ]*\+?(\d+)(?:[\t\n\v\f\r ]|$)/

/** Runs one frame against `store`. */
export const makeHandler = (store: Store, options: CommandOptions): ((frame: Uint8Array) => Outcome) => {
  const { counters } = store
  return (frame) => {
    counters.bytes_read += frame.length
    const lf = frame.indexOf(LF)
    // Only the decoder's refused line has no `\n`.
    const outcome =
      lf < 0 ? lineTooLong : run(store, options, parseCommand(latin1(frame, 0, lineEnd(frame, 0, lf))), frame, lf)
    if (outcome !== undefined)
      counters.bytes_written += outcome instanceof Close ? (outcome.reply?.length ?? 0) : outcome.length
    return outcome
  }
}

// One command, its line parsed; a storage command's data block follows the line's `\n` at `lf`.
const run = (store: Store, options: CommandOptions, command: Command, frame: Uint8Array, lf: number): Outcome => {
  const { counters } = store
  switch (command._tag) {
    case "Store":
      return silence(command.noreply, storeCommand(store, options, command, frame, lf))
    case "Retrieve":
      return retrieve(store, command)
    case "Delete":
      return silence(command.noreply, deleteItem(store, command.key))
    case "Arithmetic":
      return silence(command.noreply, arithmetic(store, command))
    case "Touch":
      return silence(command.noreply, touch(store, command))
    case "FlushAll":
      counters.cmd_flush++
      store.flush(command.delay)
      return silence(command.noreply, OK)
    case "Stats":
      return stats(store, options, command.args)
    case "Version":
      return line(`VERSION ${options.version}`)
    case "Verbosity":
      store.verbosity = command.level
      return silence(command.noreply, OK)
    case "Quit":
      return quit
    case "Invalid":
      return silence(command.noreply, line(command.reply))
  }
}

// set, add, replace, append, prepend, cas: checks the data block, then stores it.
const storeCommand = (
  store: Store,
  options: CommandOptions,
  command: Extract<Command, { _tag: "Store" }>,
  frame: Uint8Array,
  lf: number
): string => {
  const { op, key, bytes } = command
  store.counters.cmd_set++
  if (bytes > options.maxItemSize) {
    // memcached drops the old value of a `set` it cannot take, so no stale data stays behind.
    if (op === "set") store.delete(key)
    return line(errors.tooLarge)
  }
  const blockEnd = lf + 1 + bytes
  if (frame.length < blockEnd + 2 || frame[blockEnd] !== CR || frame[blockEnd + 1] !== LF) {
    return line(errors.badDataChunk)
  }
  // A copy: the frame's memory is the connection's read buffer, which the value must not pin.
  return storeValue(store, options, op, command, frame.slice(lf + 1, blockEnd))
}

const storeValue = (
  store: Store,
  options: CommandOptions,
  op: StoreOp,
  command: Extract<Command, { _tag: "Store" }>,
  value: Uint8Array
): string => {
  const { counters } = store
  const { key, flags } = command
  const expiresAt = store.expiresAt(command.exptime, store.now())
  if (op === "set") {
    store.put(key, value, flags, expiresAt)
    return STORED
  }
  const existing = store.get(key)
  switch (op) {
    case "add":
      if (existing !== undefined) return NOT_STORED
      store.put(key, value, flags, expiresAt)
      return STORED
    case "replace":
      if (existing === undefined) return NOT_STORED
      store.put(key, value, flags, expiresAt)
      return STORED
    case "append":
    case "prepend": {
      // Flags and exptime of the command are ignored: the item keeps its own.
      if (existing === undefined) return NOT_STORED
      if (existing.value.length + value.length > options.maxItemSize) return line(errors.outOfMemory)
      const joined = op === "append" ? concat(existing.value, value) : concat(value, existing.value)
      store.put(key, joined, existing.flags, existing.expiresAt)
      return STORED
    }
    case "cas":
      if (existing === undefined) {
        counters.cas_misses++
        return NOT_FOUND
      }
      if (BigInt(existing.cas) !== command.cas) {
        counters.cas_badval++
        return EXISTS
      }
      counters.cas_hits++
      store.put(key, value, flags, expiresAt)
      return STORED
  }
}

// get, gets, gat, gats: the hits' VALUE blocks, then END.
const retrieve = (store: Store, command: Extract<Command, { _tag: "Retrieve" }>): Uint8Array => {
  const { counters } = store
  const { op, keys } = command
  const withCas = op === "gets" || op === "gats"
  const touching = command.exptime !== undefined
  const expiresAt = touching ? store.expiresAt(command.exptime!, store.now()) : 0
  const parts: Array<Uint8Array> = []
  let total = END.length
  for (const key of keys) {
    counters.cmd_get++
    if (touching) counters.cmd_touch++
    const item = store.get(key, true)
    if (item === undefined) {
      counters.get_misses++
      if (touching) counters.touch_misses++
      continue
    }
    counters.get_hits++
    if (touching) {
      counters.touch_hits++
      store.touch(key, item, expiresAt)
    }
    const header = Buffer.from(valueLine(key, item, withCas), "latin1")
    parts.push(header, item.value, CRLF)
    total += header.length + item.value.length + 2
  }
  parts.push(END)
  return parts.length === 1 ? END : Buffer.concat(parts, total)
}

const deleteItem = (store: Store, key: string): string => {
  if (store.delete(key)) {
    store.counters.delete_hits++
    return DELETED
  }
  store.counters.delete_misses++
  return NOT_FOUND
}

const touch = (store: Store, command: Extract<Command, { _tag: "Touch" }>): string => {
  const { counters } = store
  counters.cmd_touch++
  const item = store.get(command.key)
  if (item === undefined) {
    counters.touch_misses++
    return NOT_FOUND
  }
  counters.touch_hits++
  store.touch(command.key, item, store.expiresAt(command.exptime, store.now()))
  return TOUCHED
}

// incr, decr: on a value that reads as a 64-bit unsigned number.
const arithmetic = (store: Store, command: Extract<Command, { _tag: "Arithmetic" }>): string => {
  const { counters } = store
  const { op, key, delta } = command
  const item = store.get(key)
  if (item === undefined) {
    counters[op === "incr" ? "incr_misses" : "decr_misses"]++
    return NOT_FOUND
  }
  const match = numericValue.exec(latin1(item.value, 0, item.value.length))
  // Over 20 significant digits cannot be a 64-bit value (and would be slow to convert).
  const digits = match === null ? undefined : match[1]!.replace(/^0+(?=\d)/, "")
  const current = digits === undefined || digits.length > 20 ? undefined : BigInt(digits)
  if (current === undefined || current > maxU64) return line(errors.nonNumeric)
  counters[op === "incr" ? "incr_hits" : "decr_hits"]++
  // incr wraps at 2^64, decr stops at 0 (protocol.txt, "Increment/Decrement").
  const next = op === "incr" ? (current + delta) & maxU64 : current > delta ? current - delta : 0n
  const result = next.toString()
  // Like memcached, a shorter result is written in place, padded with spaces to the old length.
  const stored = result.length < item.value.length ? result.padEnd(item.value.length, " ") : result
  store.update(key, item, Buffer.from(stored, "latin1"))
  return line(result)
}

const silence = (noreply: boolean, reply: string): string | undefined => (noreply ? undefined : reply)

const valueLine = (key: string, item: Item, withCas: boolean): string =>
  withCas
    ? `VALUE ${key} ${item.flags} ${item.value.length} ${item.cas}\r\n`
    : `VALUE ${key} ${item.flags} ${item.value.length}\r\n`

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const joined = new Uint8Array(a.length + b.length)
  joined.set(a, 0)
  joined.set(b, a.length)
  return joined
}

const stats = (store: Store, options: CommandOptions, args: ReadonlyArray<string>): string => {
  const rows: Array<readonly [string, string | number]> = []
  if (args.length === 0) {
    const now = store.now()
    rows.push(
      ["pid", options.pid],
      ["uptime", Math.floor((now - store.startedAt) / 1000)],
      ["time", Math.floor(now / 1000)],
      ["version", options.version],
      ["pointer_size", 64],
      ["curr_connections", store.connections],
      ...Object.entries(store.counters),
      ["limit_maxbytes", store.memoryLimit],
      ["threads", 1],
      ["bytes", store.bytes],
      ["curr_items", store.size]
    )
  } else if (args.length === 1 && args[0] === "settings") {
    rows.push(
      ["maxbytes", store.memoryLimit],
      ["item_size_max", options.maxItemSize],
      ["verbosity", store.verbosity],
      ["evictions", "on"],
      ["cas_enabled", "yes"],
      ["flush_enabled", "yes"]
    )
  } else if (args.length === 1 && args[0] === "reset") {
    store.resetCounters()
    return "RESET\r\n"
  } else {
    return line(errors.unknown)
  }
  return `${rows.map(([name, value]) => `STAT ${name} ${value}\r\n`).join("")}END\r\n`
}
