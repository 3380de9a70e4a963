/**
 * RESP2, the Redis serialization protocol, as the Redis example needs it:
 * an incremental decoder of requests (arrays of bulk strings, and inline
 * commands), a reader of the frames it produced, and the encoders of replies.
 *
 * Pure code over bytes, no sockets: `redis.ts` plugs the decoder into the
 * pool with `Framing.custom`.
 *
 * Every frame the decoder yields is a complete, valid RESP array of bulk
 * strings (an inline command is re-encoded as one), so `commandArgs` reads it
 * without checks; the limits and the error texts follow redis-server's
 * `networking.c`.
 */
import { Buffer } from "node:buffer"

/** Longest inline command or header line (redis-server's `PROTO_INLINE_MAX_SIZE`). */
export const maxLineBytes = 64 * 1024
/** Largest bulk string redis-server accepts by default (`proto-max-bulk-len`). */
export const maxBulkBytesDefault = 512 * 1024 * 1024
/** Most arguments in one command (redis-server's limit on a multibulk length). */
export const maxArgsDefault = 1024 * 1024

const CR = 13
const LF = 10
const STAR = 42
const DOLLAR = 36

/** Limits of a decoder. */
export interface DecoderOptions {
  /** Largest bulk string (default 512 MB, redis-server's `proto-max-bulk-len`). */
  readonly maxBulkBytes?: number | undefined
  /** Most arguments in one command (default 1048576). */
  readonly maxArgs?: number | undefined
}

/**
 * What one call of `RespDecoder.decode` found: the complete commands, the
 * bytes they used, and the protocol error that stops the stream, if any (the
 * commands before it are still returned; `consumed` ends with the last of them).
 */
export interface DecodeResult {
  readonly frames: Array<Uint8Array>
  readonly consumed: number
  readonly error: string | undefined
}

/**
 * Splits a byte stream into commands. One per connection: it keeps how far it
 * got into a command that is not complete yet, so a big bulk string arriving
 * in many segments is waited for by its length, not parsed again on every call.
 * Each call gets the bytes not consumed by the previous ones (the partial
 * command first).
 */
export class RespDecoder {
  private readonly maxBulkBytes: number
  private readonly maxArgs: number
  /** Arguments still to read in the current array; -1 before its header. */
  private argsLeft = -1
  /** Bytes of the current command parsed so far (complete header and bulks). */
  private parsed = 0
  /** Length of the bulk whose `$len` line was parsed; -1 when none is pending. */
  private bulkLength = -1
  /** Where the search for the end of a line resumes, from the command's start. */
  private scanned = 0

  constructor(options: DecoderOptions = {}) {
    this.maxBulkBytes = options.maxBulkBytes ?? maxBulkBytesDefault
    this.maxArgs = options.maxArgs ?? maxArgsDefault
  }

  decode(buffered: Uint8Array): DecodeResult {
    const frames: Array<Uint8Array> = []
    let start = 0
    const fail = (error: string): DecodeResult => ({ frames, consumed: start, error })
    while (start < buffered.length) {
      if (this.argsLeft < 0) {
        const newline = buffered.indexOf(LF, start + this.scanned)
        if (buffered[start] !== STAR) {
          if (newline < 0) {
            if (buffered.length - start > maxLineBytes) return fail("too big inline request")
            this.scanned = buffered.length - start
            break
          }
          const end = newline > start && buffered[newline - 1] === CR ? newline - 1 : newline
          const args = splitInline(buffered.subarray(start, end))
          if (args === undefined) return fail("unbalanced quotes in request")
          if (args.length > this.maxArgs) return fail("invalid multibulk length")
          // An empty line is skipped, as redis-server does.
          if (args.length > 0) frames.push(encodeCommand(args))
          start = newline + 1
          this.reset()
          continue
        }
        if (newline < 0) {
          if (buffered.length - start > maxLineBytes) return fail("too big mbulk count string")
          this.scanned = buffered.length - start
          break
        }
        const count = parseLength(buffered, start + 1, newline)
        if (count === undefined || count > this.maxArgs) return fail("invalid multibulk length")
        if (count <= 0) {
          // `*0` and `*-1` are no command: skipped.
          start = newline + 1
          this.reset()
          continue
        }
        this.argsLeft = count
        this.parsed = this.scanned = newline + 1 - start
      }
      while (this.argsLeft > 0) {
        const at = start + this.parsed
        if (this.bulkLength < 0) {
          if (at >= buffered.length) return { frames, consumed: start, error: undefined }
          if (buffered[at] !== DOLLAR) return fail(`expected '$', got '${String.fromCharCode(buffered[at]!)}'`)
          const newline = buffered.indexOf(LF, start + this.scanned)
          if (newline < 0) {
            if (buffered.length - at > maxLineBytes) return fail("too big bulk count string")
            this.scanned = buffered.length - start
            return { frames, consumed: start, error: undefined }
          }
          const length = parseLength(buffered, at + 1, newline)
          if (length === undefined || length < 0 || length > this.maxBulkBytes) return fail("invalid bulk length")
          this.bulkLength = length
          this.parsed = newline + 1 - start
        }
        const end = start + this.parsed + this.bulkLength + 2
        if (end > buffered.length) return { frames, consumed: start, error: undefined }
        if (buffered[end - 2] !== CR || buffered[end - 1] !== LF) return fail("expected CRLF after a bulk string")
        this.parsed = this.scanned = end - start
        this.bulkLength = -1
        this.argsLeft--
      }
      frames.push(buffered.subarray(start, start + this.parsed))
      start += this.parsed
      this.reset()
    }
    return { frames, consumed: start, error: undefined }
  }

  private reset(): void {
    this.argsLeft = -1
    this.parsed = 0
    this.bulkLength = -1
    this.scanned = 0
  }
}

/**
 * The number on a header line `from` (after `*` or `$`) up to the `\n` at
 * `newline`, which must follow a `\r`: an optional `-` and 1 to 18 digits.
 */
const parseLength = (bytes: Uint8Array, from: number, newline: number): number | undefined => {
  const end = newline - 1
  if (end < from || bytes[end] !== CR) return undefined
  let i = from
  const negative = bytes[i] === 45
  if (negative) i++
  if (i === end || end - i > 18) return undefined
  let value = 0
  for (; i < end; i++) {
    const digit = bytes[i]! - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return negative ? -value : value
}

const isSpace = (byte: number): boolean => byte === 32 || (byte >= 9 && byte <= 13)
const hexValue = (byte: number): number =>
  byte >= 48 && byte <= 57
    ? byte - 48
    : byte >= 97 && byte <= 102
      ? byte - 87
      : byte >= 65 && byte <= 70
        ? byte - 55
        : -1
const escapes: Record<number, number> = { 110: LF, 114: CR, 116: 9, 98: 8, 97: 7 }

/**
 * Splits an inline command into arguments as redis-server's `sdssplitargs`
 * does: separated by white space; "double quotes" with `\n`, `\xHH`-style
 * escapes and 'single quotes' (where only `\'` is an escape) may hold spaces;
 * a closing quote must be followed by a space or the end.
 * `undefined` for unbalanced quotes.
 */
export const splitInline = (line: Uint8Array): Array<Uint8Array> | undefined => {
  const args: Array<Uint8Array> = []
  let i = 0
  // Without quotes, the words are views of the line (the common case: PING from redis-benchmark).
  if (line.indexOf(34) < 0 && line.indexOf(39) < 0) {
    while (true) {
      while (i < line.length && isSpace(line[i]!)) i++
      if (i >= line.length) return args
      const from = i
      while (i < line.length && !isSpace(line[i]!)) i++
      args.push(line.subarray(from, i))
    }
  }
  while (true) {
    while (i < line.length && isSpace(line[i]!)) i++
    if (i >= line.length) return args
    const current: Array<number> = []
    let quote = 0
    for (;;) {
      if (quote === 0) {
        if (i >= line.length || isSpace(line[i]!)) break
        if (line[i] === 34 || line[i] === 39) quote = line[i]!
        else current.push(line[i]!)
        i++
        continue
      }
      if (i >= line.length) return undefined
      const byte = line[i]!
      if (byte === quote) {
        // The closing quote must end the argument.
        if (i + 1 < line.length && !isSpace(line[i + 1]!)) return undefined
        i++
        break
      }
      if (byte === 92 && i + 1 < line.length) {
        const next = line[i + 1]!
        if (quote === 39) {
          if (next === 39) {
            current.push(39)
            i += 2
            continue
          }
        } else if (next === 120 && i + 3 < line.length && hexValue(line[i + 2]!) >= 0 && hexValue(line[i + 3]!) >= 0) {
          current.push(hexValue(line[i + 2]!) * 16 + hexValue(line[i + 3]!))
          i += 4
          continue
        } else {
          current.push(escapes[next] ?? next)
          i += 2
          continue
        }
      }
      current.push(byte)
      i++
    }
    args.push(Uint8Array.from(current))
  }
}

/** A command as a RESP array of bulk strings (how clients send commands). */
export const encodeCommand = (args: ReadonlyArray<Uint8Array | string>): Buffer => {
  const bytes = args.map((arg) => (typeof arg === "string" ? Buffer.from(arg) : arg))
  const header = `*${bytes.length}\r\n`
  let size = header.length
  for (const arg of bytes) size += String(arg.length).length + arg.length + 5
  const out = Buffer.allocUnsafe(size)
  let at = out.write(header, 0, "latin1")
  for (const arg of bytes) {
    at += out.write(`$${arg.length}\r\n`, at, "latin1")
    out.set(arg, at)
    at += arg.length
    out[at++] = CR
    out[at++] = LF
  }
  return out
}

/**
 * The arguments of a frame the decoder produced (views into it). The frame is
 * known to be valid, so this only walks the lengths; it stays within the
 * frame all the same (bytes that are not a RESP array give no arguments).
 */
export const commandArgs = (frame: Uint8Array): Array<Uint8Array> => {
  const end = frame.length
  let i = 1
  let count = 0
  while (i < end && frame[i] !== CR) count = count * 10 + frame[i++]! - 48
  if (frame[0] !== STAR || !(count > 0)) return []
  i += 2
  const args: Array<Uint8Array> = []
  for (let n = 0; n < count && i < end; n++) {
    i++ // "$"
    let length = 0
    while (i < end && frame[i] !== CR) length = length * 10 + frame[i++]! - 48
    i += 2
    args.push(frame.subarray(i, i + length))
    i += length + 2
  }
  return args
}

/** `+text\r\n` */
export const simple = (text: string): Buffer => Buffer.from(`+${text}\r\n`, "latin1")

/** `-message\r\n`; line breaks in `message` become spaces, as redis-server does, so the reply stays one line. */
export const error = (message: string): Buffer => Buffer.from(`-${message.replace(/[\r\n]+/g, " ")}\r\n`)

const smallIntegers = Array.from({ length: 130 }, (_, n) => Buffer.from(`:${n - 2}\r\n`))

/** `:n\r\n` */
export const integer = (n: number | bigint): Buffer =>
  typeof n === "number" && n >= -2 && n < 128 && Number.isInteger(n) ? smallIntegers[n + 2]! : Buffer.from(`:${n}\r\n`)

/** The null bulk string, `$-1\r\n` (a missing key). */
export const nullBulk = Buffer.from("$-1\r\n")

/** `$length\r\n` + `data` + `\r\n` */
export const bulk = (data: Uint8Array | string): Buffer => {
  const bytes = typeof data === "string" ? Buffer.from(data) : data
  const header = `$${bytes.length}\r\n`
  const out = Buffer.allocUnsafe(header.length + bytes.length + 2)
  out.write(header, 0, "latin1")
  out.set(bytes, header.length)
  out[out.length - 2] = CR
  out[out.length - 1] = LF
  return out
}

/** An array of already encoded replies. */
export const array = (items: ReadonlyArray<Uint8Array>): Buffer =>
  Buffer.concat([Buffer.from(`*${items.length}\r\n`, "latin1"), ...items])

/** An array of bulk strings. */
export const bulkArray = (items: ReadonlyArray<Uint8Array | string>): Buffer => array(items.map(bulk))
