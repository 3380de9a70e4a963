/**
 * How the pool cuts a connection's byte stream into the messages it hands to
 * the callback. The default, `goRule`, is the Go original's rule (SPEC.md): a
 * read that does not fill `bufferSize` ends a message, so a message is
 * whatever arrived together. Real protocols need frames instead: `lines`,
 * `delimiter` and `lengthField` are the built-ins (after Netty's
 * `LineBasedFrameDecoder`, `DelimiterBasedFrameDecoder` and
 * `LengthFieldBasedFrameDecoder`), and `custom` takes a decoder for protocols
 * whose frame length depends on their content (RESP, memcached, HTTP/1).
 *
 * A framing is chosen per manager (`ManagerConfig`'s `framing` field, or
 * `--framing` on the CLI, parsed by `parse`). With a framing other than the
 * Go rule, every complete frame that arrived is delivered in order, a chunk's
 * frames are answered in one pass and their replies leave in one write; a
 * frame over its maximum or over `maxMessageBytes`, a bad length field, or a
 * decoder that throws closes that connection only (logged and counted).
 * `setConfig` changes the framing of connections admitted afterwards; a
 * connection keeps the framing (and the decoder) it started with.
 *
 * @example
 * ```ts
 * import { Framing, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * // A line protocol: "PING\nPING\n" in one write is two messages, two PONGs.
 * const Pool = PoolManager.layer({ framing: Framing.lines({ maxLength: 1024 }) }, (conn, line) =>
 *   conn.write(new TextDecoder().decode(line) === "PING" ? "PONG\n" : "ERROR unknown command\n")
 * )
 *
 * // The same from a spec string, as the CLI's --framing and the config file take it.
 * const framing = Framing.parse("length:4:be:max=65536") // Result.succeed(Framing.lengthField(...))
 * ```
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"

/**
 * The Go original's rule: a read that does not fill `bufferSize` ends a
 * message. The default.
 *
 * @category models
 * @since 0.2.0
 */
export interface GoRule {
  readonly _tag: "GoRule"
}

/**
 * Lines ended by `\n` or `\r\n` (Netty's `LineBasedFrameDecoder`).
 *
 * @category models
 * @since 0.2.0
 */
export interface Lines {
  readonly _tag: "Lines"
  /** Most bytes of a line, its delimiter not counted (`Infinity`: only `maxMessageBytes` caps it). */
  readonly maxLength: number
  /** Whether frames leave out their `\n` or `\r\n` (default true). */
  readonly stripDelimiter: boolean
}

/**
 * Frames ended by a byte sequence (Netty's `DelimiterBasedFrameDecoder` with one delimiter).
 *
 * @category models
 * @since 0.2.0
 */
export interface Delimiter {
  readonly _tag: "Delimiter"
  /** The bytes that end a frame (at least one). */
  readonly delimiter: Uint8Array
  /** Most bytes of a frame, its delimiter not counted (`Infinity`: only `maxMessageBytes` caps it). */
  readonly maxLength: number
  /** Whether frames leave out their delimiter (default true). */
  readonly stripDelimiter: boolean
}

/**
 * Frames that carry their length in a header field, with the parameters and
 * semantics of Netty's `LengthFieldBasedFrameDecoder`: the field's value plus
 * `lengthAdjustment` is the number of bytes after the field; the frame is
 * delivered without its first `initialBytesToStrip` bytes.
 *
 * @category models
 * @since 0.2.0
 */
export interface LengthField {
  readonly _tag: "LengthField"
  /** Where the length field starts in the frame (default 0). */
  readonly lengthFieldOffset: number
  /** The length field's size in bytes. */
  readonly lengthFieldLength: 1 | 2 | 4 | 8
  /** The length field's byte order (default big endian). */
  readonly byteOrder: "BE" | "LE"
  /** Added to the field's value to get the bytes after the field (default 0; may be negative). */
  readonly lengthAdjustment: number
  /** Bytes cut from the front of each frame before it is delivered, e.g. the header (default 0). */
  readonly initialBytesToStrip: number
  /** Most bytes of a whole frame, header included (`Infinity`: only `maxMessageBytes` caps what is delivered). */
  readonly maxFrameLength: number
}

/**
 * A decoder written by the user, made once per connection.
 *
 * @category models
 * @since 0.2.0
 */
export interface Custom {
  readonly _tag: "Custom"
  /** Shown by `format` (as `custom:<name>`) and in logs. */
  readonly name: string
  /** Makes the decoder of one connection, when a worker takes the connection. */
  readonly make: () => Decoder
}

/**
 * How the pool frames a connection's bytes.
 *
 * @category models
 * @since 0.2.0
 */
export type Framing = GoRule | Lines | Delimiter | LengthField | Custom

/**
 * A custom framing's decoder: one per connection (made when a worker takes
 * the connection), so it may keep state between calls.
 *
 * @category models
 * @since 0.2.0
 */
export interface Decoder {
  /**
   * Called with every byte buffered and not yet consumed (a fresh view each
   * call; the bytes before `consumed` are dropped afterwards, and the rest are
   * passed again, first, with what arrives next). Returns the complete frames
   * found, in order, and how many bytes they used. Frames may be subarrays of
   * `buffered`: the pool never reuses that memory. Throwing (ideally a
   * `FrameError`) closes the connection as bad input, and so does a
   * `consumed` that is not a whole number from 0 to `buffered.length`.
   */
  decode(buffered: Uint8Array): Decoded
}

/**
 * What a `Decoder` found.
 *
 * @category models
 * @since 0.2.0
 */
export interface Decoded {
  /** The complete frames, in order. */
  readonly frames: ReadonlyArray<Uint8Array>
  /** How many bytes of `buffered`, from its start, the frames used (and any bytes skipped). */
  readonly consumed: number
}

/**
 * Bad input found by a decoder: the pool closes the connection, logs
 * `message` with the peer's address, and counts it (reason `framing`, or
 * `size` when `tooLarge`).
 *
 * @category errors
 * @since 0.2.0
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly message: string
  /** Set when a frame is over a maximum (counted as `size`, like a message over `maxMessageBytes`). */
  readonly tooLarge?: boolean | undefined
}> {}

/**
 * The Go original's rule (the default).
 *
 * @category constructors
 * @since 0.2.0
 */
export const goRule: Framing = { _tag: "GoRule" }

/**
 * Lines ended by `\n` or `\r\n`, the delimiter stripped unless
 * `stripDelimiter` is false; a line longer than `maxLength` (default: no
 * limit of its own, `maxMessageBytes` caps it) closes its connection.
 *
 * @category constructors
 * @since 0.2.0
 */
export const lines = (options?: {
  readonly maxLength?: number | undefined
  readonly stripDelimiter?: boolean | undefined
}): Framing => ({
  _tag: "Lines",
  maxLength: options?.maxLength ?? Infinity,
  stripDelimiter: options?.stripDelimiter ?? true
})

const encoder = new TextEncoder()

/**
 * Frames ended by `delimiter` (a string is taken as UTF-8), the delimiter
 * stripped unless `stripDelimiter` is false; a frame longer than `maxLength`
 * (default: no limit of its own, `maxMessageBytes` caps it) closes its connection.
 *
 * @category constructors
 * @since 0.2.0
 */
export const delimiter = (
  delimiter: string | Uint8Array,
  options?: { readonly maxLength?: number | undefined; readonly stripDelimiter?: boolean | undefined }
): Framing => ({
  _tag: "Delimiter",
  delimiter: typeof delimiter === "string" ? encoder.encode(delimiter) : delimiter,
  maxLength: options?.maxLength ?? Infinity,
  stripDelimiter: options?.stripDelimiter ?? true
})

/**
 * Length-prefixed frames, as Netty's `LengthFieldBasedFrameDecoder`
 * (`byteOrder` "BE", the other options 0, `maxFrameLength` no limit of its
 * own unless given). A field over `Number.MAX_SAFE_INTEGER`, or a length that
 * the adjustment makes shorter than the header, closes its connection.
 *
 * @example
 * ```ts
 * import { Framing } from "@pool-manager/core"
 *
 * // A 2-byte big-endian length of the body, the header stripped.
 * const framing = Framing.lengthField({ lengthFieldLength: 2, initialBytesToStrip: 2, maxFrameLength: 65537 })
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const lengthField = (options: {
  readonly lengthFieldLength: 1 | 2 | 4 | 8
  readonly byteOrder?: "BE" | "LE" | undefined
  readonly lengthFieldOffset?: number | undefined
  readonly lengthAdjustment?: number | undefined
  readonly initialBytesToStrip?: number | undefined
  readonly maxFrameLength?: number | undefined
}): Framing => ({
  _tag: "LengthField",
  lengthFieldOffset: options.lengthFieldOffset ?? 0,
  lengthFieldLength: options.lengthFieldLength,
  byteOrder: options.byteOrder ?? "BE",
  lengthAdjustment: options.lengthAdjustment ?? 0,
  initialBytesToStrip: options.initialBytesToStrip ?? 0,
  maxFrameLength: options.maxFrameLength ?? Infinity
})

/**
 * A framing with a decoder of your own; `make` is called once per connection.
 *
 * @example
 * ```ts
 * import { Framing } from "@pool-manager/core"
 *
 * // Frames of a 1-byte length and that many bytes (a decoder of one's own).
 * const framing = Framing.custom("byte-prefixed", () => ({
 *   decode(buffered) {
 *     const frames: Array<Uint8Array> = []
 *     let at = 0
 *     while (at < buffered.length && at + 1 + buffered[at]! <= buffered.length) {
 *       frames.push(buffered.subarray(at + 1, at + 1 + buffered[at]!))
 *       at += 1 + buffered[at]!
 *     }
 *     return { frames, consumed: at }
 *   }
 * }))
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const custom = (name: string, make: () => Decoder): Framing => ({ _tag: "Custom", name, make })

/**
 * Whether `u` is a `Framing`.
 *
 * @category guards
 * @since 0.2.0
 */
export const isFraming = (u: unknown): u is Framing => {
  if (typeof u !== "object" || u === null) return false
  switch ((u as { _tag?: unknown })._tag) {
    case "GoRule":
    case "Lines":
    case "Delimiter":
    case "LengthField":
    case "Custom":
      return true
    default:
      return false
  }
}

const isMax = (n: number) => n === Infinity || (Number.isSafeInteger(n) && n >= 1)
const isOffset = (n: number) => Number.isSafeInteger(n) && n >= 0

/**
 * What is wrong with `framing`'s parameters, or `undefined` when they are
 * valid (`ManagerConfig` rejects an invalid framing with this message).
 *
 * @category validation
 * @since 0.2.0
 */
export const validate = (framing: Framing): string | undefined => {
  switch (framing._tag) {
    case "GoRule":
      return undefined
    case "Lines":
      return isMax(framing.maxLength) ? undefined : "expected lines' maxLength to be a whole number >= 1 or Infinity"
    case "Delimiter":
      if (!(framing.delimiter instanceof Uint8Array) || framing.delimiter.length === 0)
        return "expected a delimiter of at least one byte"
      return isMax(framing.maxLength)
        ? undefined
        : "expected delimiter's maxLength to be a whole number >= 1 or Infinity"
    case "LengthField":
      if (![1, 2, 4, 8].includes(framing.lengthFieldLength)) return "expected lengthFieldLength 1, 2, 4 or 8"
      if (framing.byteOrder !== "BE" && framing.byteOrder !== "LE") return 'expected byteOrder "BE" or "LE"'
      if (!isOffset(framing.lengthFieldOffset)) return "expected lengthFieldOffset to be a whole number >= 0"
      if (!Number.isSafeInteger(framing.lengthAdjustment)) return "expected lengthAdjustment to be a whole number"
      if (!isOffset(framing.initialBytesToStrip)) return "expected initialBytesToStrip to be a whole number >= 0"
      if (!isMax(framing.maxFrameLength)) return "expected maxFrameLength to be a whole number >= 1 or Infinity"
      if (framing.maxFrameLength < framing.lengthFieldOffset + framing.lengthFieldLength)
        return "expected maxFrameLength to leave room for the length field (lengthFieldOffset + lengthFieldLength)"
      return undefined
    case "Custom":
      return typeof framing.make === "function" ? undefined : "expected a custom framing's make to be a function"
  }
}

// Delimiters in specs: printable ASCII as is, the rest (and ":", "\", ",") escaped.
const escapes: Record<string, number> = { n: 10, r: 13, t: 9, "0": 0, "\\": 92 }

const unescapeBytes = (text: string): Uint8Array | undefined => {
  const bytes: Array<number> = []
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== "\\") {
      bytes.push(...encoder.encode(c))
      continue
    }
    const next = text[++i]
    if (next === undefined) return undefined
    if (next === "x") {
      const hex = text.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else if (next in escapes) bytes.push(escapes[next]!)
    else return undefined
  }
  return Uint8Array.from(bytes)
}

const escapeBytes = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) {
    if (byte === 10) out += "\\n"
    else if (byte === 13) out += "\\r"
    else if (byte === 9) out += "\\t"
    else if (byte === 92) out += "\\\\"
    else if (byte > 32 && byte < 127 && byte !== 58 && byte !== 44) out += String.fromCharCode(byte)
    else out += `\\x${byte.toString(16).padStart(2, "0")}`
  }
  return out
}

const parseMax = (text: string): number | undefined => {
  if (text === "infinity" || text === "Infinity") return Infinity
  return /^\d+$/.test(text) ? Number(text) : undefined
}

const specHelp =
  'expected "go", "lines[:MAX][:keep]", "delimiter:BYTES[:MAX][:keep]" (escapes \\r \\n \\t \\0 \\\\ \\xHH) or "length:1|2|4|8[:be|le][:offset=N,adjust=N,strip=N,max=N]"'

const checked = (framing: Framing): Result.Result<Framing, string> => {
  const problem = validate(framing)
  return problem === undefined ? Result.succeed(framing) : Result.fail(problem)
}

// The optional ":MAX" and ":keep" that follow lines and delimiter specs.
const parseTail = (
  parts: ReadonlyArray<string>
): { readonly maxLength: number; readonly stripDelimiter: boolean } | undefined => {
  let maxLength = Infinity
  let stripDelimiter = true
  let rest = parts
  if (rest.length > 0 && rest[0] !== "keep") {
    const max = parseMax(rest[0]!)
    if (max === undefined) return undefined
    maxLength = max
    rest = rest.slice(1)
  }
  if (rest.length > 0 && rest[0] === "keep") {
    stripDelimiter = false
    rest = rest.slice(1)
  }
  return rest.length === 0 ? { maxLength, stripDelimiter } : undefined
}

const parseLength = (parts: ReadonlyArray<string>): Result.Result<Framing, string> => {
  const size = Number(parts[0])
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8)
    return Result.fail(`${specHelp}; the length field has 1, 2, 4 or 8 bytes`)
  let rest = parts.slice(1)
  let byteOrder: "BE" | "LE" = "BE"
  if (rest.length > 0 && /^(be|le)$/i.test(rest[0]!)) {
    byteOrder = rest[0]!.toUpperCase() as "BE" | "LE"
    rest = rest.slice(1)
  }
  const options: Record<string, number> = {}
  if (rest.length > 1) return Result.fail(specHelp)
  if (rest.length === 1) {
    for (const pair of rest[0]!.split(",")) {
      const match = /^(offset|adjust|strip|max)=(-?\d+|infinity)$/i.exec(pair)
      if (match === null) return Result.fail(`${specHelp}; not understood: ${JSON.stringify(pair)}`)
      const value = match[2]!.toLowerCase() === "infinity" ? Infinity : Number(match[2])
      options[match[1]!.toLowerCase()] = value
    }
  }
  return checked(
    lengthField({
      lengthFieldLength: size,
      byteOrder,
      lengthFieldOffset: options.offset,
      lengthAdjustment: options.adjust,
      initialBytesToStrip: options.strip,
      maxFrameLength: options.max
    })
  )
}

/**
 * Reads a framing from its spec, as `--framing` and the config file take it:
 * `go`; `lines`, `lines:8192`, `lines:8192:keep` (keep the delimiter);
 * `delimiter:\r\n`, `delimiter:\x00:4096` (escapes `\r \n \t \0 \\ \xHH`,
 * `:` and `,` as `\x3a` and `\x2c`); `length:4`, `length:4:le`,
 * `length:2:be:offset=2,adjust=-2,strip=4,max=65536`. A custom framing is
 * given in code, not by a spec.
 *
 * @example
 * ```ts
 * import { Framing } from "@pool-manager/core"
 * import { Result } from "effect"
 *
 * const framing = Framing.parse("length:4:be") // Result.succeed(Framing.lengthField({ lengthFieldLength: 4 }))
 * Result.isFailure(Framing.parse("length:3")) // true: the field has 1, 2, 4 or 8 bytes
 * ```
 *
 * @category parsing
 * @since 0.2.0
 */
export const parse = (spec: string): Result.Result<Framing, string> => {
  const text = spec.trim()
  const [kind, ...parts] = text.split(":")
  switch (kind?.toLowerCase()) {
    case "go":
      return parts.length === 0 ? Result.succeed(goRule) : Result.fail(specHelp)
    case "lines": {
      const tail = parseTail(parts)
      return tail === undefined ? Result.fail(specHelp) : checked(lines(tail))
    }
    case "delimiter": {
      const bytes = parts[0] === undefined ? undefined : unescapeBytes(parts[0])
      const tail = parseTail(parts.slice(1))
      if (bytes === undefined || tail === undefined) return Result.fail(specHelp)
      return checked(delimiter(bytes, tail))
    }
    case "length":
      return parseLength(parts)
    case "custom":
      return Result.fail("a custom framing is given in code (Framing.custom), not by a spec")
    default:
      return Result.fail(specHelp)
  }
}

const formatTail = (maxLength: number, stripDelimiter: boolean): string =>
  `${maxLength === Infinity ? "" : `:${maxLength}`}${stripDelimiter ? "" : ":keep"}`

/**
 * The spec of `framing` (`parse` reads it back for the built-ins); a custom
 * framing is shown as `custom:<name>`.
 *
 * @category formatting
 * @since 0.2.0
 */
export const format = (framing: Framing): string => {
  switch (framing._tag) {
    case "GoRule":
      return "go"
    case "Lines":
      return `lines${formatTail(framing.maxLength, framing.stripDelimiter)}`
    case "Delimiter":
      return `delimiter:${escapeBytes(framing.delimiter)}${formatTail(framing.maxLength, framing.stripDelimiter)}`
    case "LengthField": {
      const options = [
        framing.lengthFieldOffset === 0 ? "" : `offset=${framing.lengthFieldOffset}`,
        framing.lengthAdjustment === 0 ? "" : `adjust=${framing.lengthAdjustment}`,
        framing.initialBytesToStrip === 0 ? "" : `strip=${framing.initialBytesToStrip}`,
        framing.maxFrameLength === Infinity ? "" : `max=${framing.maxFrameLength}`
      ].filter((option) => option !== "")
      const order = framing.byteOrder.toLowerCase()
      return `length:${framing.lengthFieldLength}:${order}${options.length === 0 ? "" : `:${options.join(",")}`}`
    }
    case "Custom":
      return `custom:${framing.name}`
  }
}
