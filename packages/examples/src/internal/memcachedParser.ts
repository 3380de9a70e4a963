/**
 * The memcached ASCII protocol's command lines (memcached's `doc/protocol.txt`):
 * one line, already cut at its `\n` (and its `\r` before it), parsed into a
 * `Command`, or into the error reply memcached gives for it. Pure: no time, no
 * store; `memcachedDecoder.ts` uses it to know which lines carry a data block,
 * `memcachedCommands.ts` to run them.
 *
 * Where protocol.txt leaves a reply open, memcached 1.6's own replies are the
 * reference (token counts, `ERROR` vs `CLIENT_ERROR`, a `+` before a number),
 * with deliberate differences where memcached is looser than protocol.txt:
 * keys with control characters are refused ("the key must not include
 * control characters or whitespace"), and so are flags over 32 bits (memcached
 * truncates them).
 */

/** A key's longest length in bytes (protocol.txt, "Keys"). */
export const maxKeyLength = 250

/** Relative expiration times longer than this are absolute unix times (protocol.txt, "Expiration times"). */
export const maxRelativeExptime = 60 * 60 * 24 * 30

/** The six commands followed by a data block. */
export type StoreOp = "set" | "add" | "replace" | "append" | "prepend" | "cas"

/** A parsed command line. Keys are latin1 strings: one character per byte, so any byte round-trips. */
export type Command =
  | {
      readonly _tag: "Store"
      readonly op: StoreOp
      readonly key: string
      readonly flags: number
      readonly exptime: number
      /** Length of the data block that follows the line (without its `\r\n`). */
      readonly bytes: number
      /** The `cas unique` of a `cas` command (0n otherwise). */
      readonly cas: bigint
      readonly noreply: boolean
    }
  | {
      readonly _tag: "Retrieve"
      readonly op: "get" | "gets" | "gat" | "gats"
      readonly keys: ReadonlyArray<string>
      /** The new expiration time of `gat`/`gats` (undefined for `get`/`gets`). */
      readonly exptime: number | undefined
    }
  | { readonly _tag: "Delete"; readonly key: string; readonly noreply: boolean }
  | {
      readonly _tag: "Arithmetic"
      readonly op: "incr" | "decr"
      readonly key: string
      readonly delta: bigint
      readonly noreply: boolean
    }
  | { readonly _tag: "Touch"; readonly key: string; readonly exptime: number; readonly noreply: boolean }
  | { readonly _tag: "FlushAll"; readonly delay: number; readonly noreply: boolean }
  | { readonly _tag: "Stats"; readonly args: ReadonlyArray<string> }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Verbosity"; readonly level: number; readonly noreply: boolean }
  | { readonly _tag: "Quit" }
  /** The line is not a valid command: `reply` is the whole error line, without `\r\n`. */
  | { readonly _tag: "Invalid"; readonly reply: string; readonly noreply: boolean }

/** protocol.txt's error strings. */
export const errors = {
  unknown: "ERROR",
  badFormat: "CLIENT_ERROR bad command line format",
  badDataChunk: "CLIENT_ERROR bad data chunk",
  badExptime: "CLIENT_ERROR invalid exptime argument",
  badDelta: "CLIENT_ERROR invalid numeric delta argument",
  nonNumeric: "CLIENT_ERROR cannot increment or decrement non-numeric value",
  deleteUsage: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
  lineTooLong: "CLIENT_ERROR line too long",
  tooLarge: "SERVER_ERROR object too large for cache",
  outOfMemory: "SERVER_ERROR out of memory storing object"
} as const

const invalid = (reply: string, noreply = false): Command => ({ _tag: "Invalid", reply, noreply })
const unknown = invalid(errors.unknown)

// As strtoul/strtol read them: a sign is allowed (memcached takes `+5`).
const digits = /^\+?\d+$/
const signedDigits = /^[+-]?\d+$/
const maxU32 = 0xffff_ffff
const maxU64 = (1n << 64n) - 1n

/** An unsigned 32-bit decimal (memcached's `safe_strtoul`), or undefined. */
export const parseU32 = (text: string): number | undefined => {
  if (!digits.test(text)) return undefined
  const value = Number(text)
  return value <= maxU32 ? value : undefined
}

/** A signed 32-bit decimal (memcached's `safe_strtol`), or undefined. */
export const parseI32 = (text: string): number | undefined => {
  if (!signedDigits.test(text)) return undefined
  const value = Number(text)
  return value >= -0x8000_0000 && value <= 0x7fff_ffff ? value : undefined
}

/**
 * An expiration time or delay in seconds: any integer JavaScript holds
 * exactly (memcached reads a long, so unix times after 2038 work), or undefined.
 */
export const parseTime = (text: string): number | undefined => {
  if (!signedDigits.test(text)) return undefined
  const value = Number(text)
  return Number.isSafeInteger(value) ? value : undefined
}

/** An unsigned 64-bit decimal (memcached's `safe_strtoull`), or undefined. */
export const parseU64 = (text: string): bigint | undefined => {
  if (!digits.test(text)) return undefined
  const value = BigInt(text)
  return value <= maxU64 ? value : undefined
}

/** True when `key` is 1 to 250 bytes with no whitespace or control character. */
export const isValidKey = (key: string): boolean => {
  if (key.length === 0 || key.length > maxKeyLength) return false
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    if (code <= 0x20 || code === 0x7f) return false
  }
  return true
}

// memcached splits on spaces only, and runs of them count as one.
const tokenize = (line: string): Array<string> => {
  const tokens = line.split(" ")
  return tokens.length === 1 || !tokens.includes("") ? tokens : tokens.filter((token) => token !== "")
}

const hasNoreply = (tokens: ReadonlyArray<string>, withIt: number): boolean =>
  tokens.length === withIt && tokens[withIt - 1] === "noreply"

const parseStore = (op: StoreOp, tokens: ReadonlyArray<string>): Command => {
  const fields = op === "cas" ? 6 : 5
  if (tokens.length !== fields && tokens.length !== fields + 1) return unknown
  const noreply = hasNoreply(tokens, fields + 1)
  const key = tokens[1]!
  const flags = parseU32(tokens[2]!)
  const exptime = parseTime(tokens[3]!)
  const bytes = parseI32(tokens[4]!)
  const cas = op === "cas" ? parseU64(tokens[5]!) : 0n
  // memcached refuses a length it could not add the `\r\n` to in an int.
  const badLength = bytes === undefined || bytes < 0 || bytes > 0x7fff_fffd
  if (!isValidKey(key) || flags === undefined || exptime === undefined || badLength) {
    return invalid(errors.badFormat, noreply)
  }
  if (cas === undefined) return invalid(errors.badFormat, noreply)
  return { _tag: "Store", op, key, flags, exptime, bytes, cas, noreply }
}

const parseRetrieve = (op: "get" | "gets" | "gat" | "gats", tokens: ReadonlyArray<string>): Command => {
  const touch = op === "gat" || op === "gats"
  if (tokens.length < 2) return unknown
  const exptime = touch ? parseTime(tokens[1]!) : undefined
  if (touch && exptime === undefined) return invalid(errors.badExptime)
  const keys = tokens.slice(touch ? 2 : 1)
  for (const key of keys) if (!isValidKey(key)) return invalid(errors.badFormat)
  return { _tag: "Retrieve", op, keys, exptime }
}

const parseDelete = (tokens: ReadonlyArray<string>): Command => {
  if (tokens.length < 2 || tokens.length > 4) return unknown
  const noreply = tokens[tokens.length - 1] === "noreply" && tokens.length > 2
  // memcached still takes the legacy `delete <key> 0` (a hold time of zero).
  const holdIsZero = tokens.length > 2 && tokens[2] === "0"
  const valid =
    tokens.length === 2 ||
    (tokens.length === 3 && (holdIsZero || noreply)) ||
    (tokens.length === 4 && holdIsZero && noreply)
  if (!valid) return invalid(errors.deleteUsage, noreply)
  const key = tokens[1]!
  if (!isValidKey(key)) return invalid(errors.badFormat, noreply)
  return { _tag: "Delete", key, noreply }
}

const parseArithmetic = (op: "incr" | "decr", tokens: ReadonlyArray<string>): Command => {
  if (tokens.length !== 3 && tokens.length !== 4) return unknown
  const noreply = hasNoreply(tokens, 4)
  const key = tokens[1]!
  if (!isValidKey(key)) return invalid(errors.badFormat, noreply)
  const delta = parseU64(tokens[2]!)
  if (delta === undefined) return invalid(errors.badDelta, noreply)
  return { _tag: "Arithmetic", op, key, delta, noreply }
}

const parseTouch = (tokens: ReadonlyArray<string>): Command => {
  if (tokens.length !== 3 && tokens.length !== 4) return unknown
  const noreply = hasNoreply(tokens, 4)
  const key = tokens[1]!
  if (!isValidKey(key)) return invalid(errors.badFormat, noreply)
  const exptime = parseTime(tokens[2]!)
  if (exptime === undefined) return invalid(errors.badExptime, noreply)
  return { _tag: "Touch", key, exptime, noreply }
}

const parseFlushAll = (tokens: ReadonlyArray<string>): Command => {
  if (tokens.length > 3) return unknown
  const noreply = tokens.length > 1 && tokens[tokens.length - 1] === "noreply"
  if (tokens.length === (noreply ? 2 : 1)) return { _tag: "FlushAll", delay: 0, noreply }
  const delay = parseTime(tokens[1]!)
  if (delay === undefined) return invalid(errors.badExptime, noreply)
  return { _tag: "FlushAll", delay, noreply }
}

const parseVerbosity = (tokens: ReadonlyArray<string>): Command => {
  if (tokens.length !== 2 && tokens.length !== 3) return unknown
  const noreply = hasNoreply(tokens, 3)
  const level = parseU32(tokens[1]!)
  if (level === undefined) return invalid(errors.badFormat, noreply)
  return { _tag: "Verbosity", level, noreply }
}

/**
 * Parses one command line (without its `\r\n` or `\n`), given as a latin1
 * string. Command names are lower-case and case-sensitive.
 */
export const parseCommand = (line: string): Command => {
  const tokens = tokenize(line)
  if (tokens[0] === "" && tokens.length === 1) return unknown
  const name = tokens[0]!
  switch (name) {
    case "get":
    case "gets":
    case "gat":
    case "gats":
      return parseRetrieve(name, tokens)
    case "set":
    case "add":
    case "replace":
    case "append":
    case "prepend":
    case "cas":
      return parseStore(name, tokens)
    case "delete":
      return parseDelete(tokens)
    case "incr":
    case "decr":
      return parseArithmetic(name, tokens)
    case "touch":
      return parseTouch(tokens)
    case "flush_all":
      return parseFlushAll(tokens)
    case "stats":
      return { _tag: "Stats", args: tokens.slice(1) }
    case "version":
      return { _tag: "Version" }
    case "verbosity":
      return parseVerbosity(tokens)
    case "quit":
      return { _tag: "Quit" }
    default:
      return unknown
  }
}

/** True when a line starting with this first byte may be a storage command (s, a, r, p, c). */
export const mayStore = (firstByte: number): boolean =>
  firstByte === 0x73 || firstByte === 0x61 || firstByte === 0x72 || firstByte === 0x70 || firstByte === 0x63

/** True when the line is a retrieval (`get`, `gets`, `gat`, `gats`), whose key lists may be long. */
export const isRetrieval = (line: string): boolean => /^ *(?:get|gets|gat|gats) /.test(line)
