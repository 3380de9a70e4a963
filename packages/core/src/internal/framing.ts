/**
 * Framing: bytes in, frames out, with no I/O and no Effect. The serve loop
 * pushes each chunk it polls into a connection's `Framer` and hands the frames
 * that come out to the callback; everything about frames (the built-in
 * decoders, the buffer of a partial frame, checking a custom decoder's
 * answers, the limits) is here, so it is tested on its own.
 *
 * Memory: a chunk whose frames are all complete is decoded in place, and its
 * frames are views of it. Only a partial frame is kept; when more bytes
 * arrive it is copied, with them, into a buffer owned here that grows
 * geometrically and is only ever appended to, so a frame handed out (a view of
 * that buffer) is never overwritten while a callback may hold it.
 */
import type * as Framing from "../Framing.ts"

/** Why a connection's input is bad: a frame over a maximum (`size`), or anything else (`framing`). */
export interface Fault {
  readonly reason: "size" | "framing"
  readonly detail: string
}

/** What a built-in decoder found: frames, bytes used, and the bad input after them, if any. */
interface Found {
  // A built-in decoder's own array, reused; a custom decoder's, as it returned it.
  frames: ReadonlyArray<Uint8Array>
  consumed: number
  fault: Fault | undefined
}

/** A decoder of this module: one per connection, reusing its result (valid until the next call). */
interface BuiltIn {
  /** The framing's own maximum for a frame's content (Infinity when it has none). */
  readonly limit: number
  /** The most bytes of a frame's content: `limit` or maxMessageBytes, whichever is less. */
  max: number
  decode(buffered: Uint8Array): Found
}

const tooLarge = (detail: string): Fault => ({ reason: "size", detail })
const malformed = (detail: string): Fault => ({ reason: "framing", detail })

const LF = 10
const CR = 13

/** Lines ended by `\n` or `\r\n`; `max` counts the line without its delimiter. */
class LinesDecoder implements BuiltIn {
  readonly list: Array<Uint8Array> = []
  readonly found: Found = { frames: this.list, consumed: 0, fault: undefined }
  // Bytes at the start of the next call's buffer already searched for "\n":
  // the partial line left by this call, passed again first.
  scanned = 0
  max: number
  readonly limit: number
  readonly strip: boolean
  constructor(framing: Framing.Lines, maxMessageBytes: number) {
    this.limit = framing.maxLength
    this.strip = framing.stripDelimiter
    this.max = Math.min(this.limit, maxMessageBytes)
  }
  decode(buffered: Uint8Array): Found {
    const found = this.found
    const frames = this.list
    frames.length = 0
    found.fault = undefined
    const max = this.max
    let start = 0
    let at = buffered.indexOf(LF, this.scanned)
    while (at >= 0) {
      const end = at > start && buffered[at - 1] === CR ? at - 1 : at
      if (end - start > max) {
        found.fault = tooLarge(`a line over ${max} bytes`)
        break
      }
      frames.push(this.strip ? buffered.subarray(start, end) : buffered.subarray(start, at + 1))
      start = at + 1
      at = buffered.indexOf(LF, start)
    }
    const left = buffered.length - start
    // The partial line proves too long once it has more than max bytes that
    // cannot be a line's end: a "\r" after max bytes may still be one.
    if (found.fault === undefined && (left > max + 1 || (left === max + 1 && buffered[buffered.length - 1] !== CR)))
      found.fault = tooLarge(`a line over ${max} bytes`)
    found.consumed = start
    this.scanned = left
    return found
  }
}

/** Frames ended by a byte sequence; `max` counts the frame without its delimiter. */
class DelimiterDecoder implements BuiltIn {
  readonly list: Array<Uint8Array> = []
  readonly found: Found = { frames: this.list, consumed: 0, fault: undefined }
  scanned = 0
  max: number
  readonly limit: number
  readonly delimiter: Uint8Array
  readonly strip: boolean
  constructor(framing: Framing.Delimiter, maxMessageBytes: number) {
    this.delimiter = framing.delimiter
    this.strip = framing.stripDelimiter
    this.limit = framing.maxLength
    this.max = Math.min(this.limit, maxMessageBytes)
  }
  // Where the delimiter starts at or after `from`, or -1.
  find(buffered: Uint8Array, from: number): number {
    const delimiter = this.delimiter
    const first = delimiter[0]!
    const length = delimiter.length
    let at = buffered.indexOf(first, from)
    while (at >= 0 && at + length <= buffered.length) {
      let i = 1
      while (i < length && buffered[at + i] === delimiter[i]) i++
      if (i === length) return at
      at = buffered.indexOf(first, at + 1)
    }
    return -1
  }
  decode(buffered: Uint8Array): Found {
    const found = this.found
    const frames = this.list
    frames.length = 0
    found.fault = undefined
    const max = this.max
    const length = this.delimiter.length
    let start = 0
    let at = this.find(buffered, this.scanned)
    while (at >= 0) {
      if (at - start > max) {
        found.fault = tooLarge(`a frame over ${max} bytes before its delimiter`)
        break
      }
      frames.push(this.strip ? buffered.subarray(start, at) : buffered.subarray(start, at + length))
      start = at + length
      at = this.find(buffered, start)
    }
    const left = buffered.length - start
    // With max + length bytes and no delimiter, none can start within max bytes.
    if (found.fault === undefined && left >= max + length)
      found.fault = tooLarge(`a frame over ${max} bytes before its delimiter`)
    found.consumed = start
    // A delimiter may start in the last length - 1 bytes searched.
    this.scanned = Math.max(0, left - length + 1)
    return found
  }
}

const TWO_32 = 2 ** 32

/** Netty's LengthFieldBasedFrameDecoder, failing fast (a bad header closes the connection). */
class LengthFieldDecoder implements BuiltIn {
  readonly list: Array<Uint8Array> = []
  readonly found: Found = { frames: this.list, consumed: 0, fault: undefined }
  max: number
  // maxFrameLength counts the header too, so it is checked on its own.
  readonly limit = Infinity
  readonly framing: Framing.LengthField
  readonly endOffset: number
  constructor(framing: Framing.LengthField, maxMessageBytes: number) {
    this.framing = framing
    this.endOffset = framing.lengthFieldOffset + framing.lengthFieldLength
    this.max = maxMessageBytes
  }
  // The field's unsigned value, or -1 when it is over Number.MAX_SAFE_INTEGER.
  read(buffered: Uint8Array, at: number): number {
    const { byteOrder, lengthFieldLength } = this.framing
    const le = byteOrder === "LE"
    switch (lengthFieldLength) {
      case 1:
        return buffered[at]!
      case 2:
        return le ? buffered[at]! | (buffered[at + 1]! << 8) : (buffered[at]! << 8) | buffered[at + 1]!
      case 4:
        return le ? read32LE(buffered, at) : read32BE(buffered, at)
      case 8: {
        const high = le ? read32LE(buffered, at + 4) : read32BE(buffered, at)
        const low = le ? read32LE(buffered, at) : read32BE(buffered, at + 4)
        // 2^53 - 1 has 21 bits in the high word.
        return high >= 0x200000 ? -1 : high * TWO_32 + low
      }
    }
  }
  decode(buffered: Uint8Array): Found {
    const found = this.found
    const frames = this.list
    frames.length = 0
    found.fault = undefined
    const { lengthAdjustment, initialBytesToStrip, maxFrameLength, lengthFieldOffset } = this.framing
    const endOffset = this.endOffset
    let start = 0
    while (buffered.length - start >= endOffset) {
      const value = this.read(buffered, start + lengthFieldOffset)
      if (value < 0) {
        found.fault = malformed("a length field over 2^53 - 1")
        break
      }
      const frameLength = value + lengthAdjustment + endOffset
      if (frameLength < endOffset) {
        found.fault = malformed(`a negative length (field ${value}, adjustment ${lengthAdjustment})`)
        break
      }
      if (frameLength > maxFrameLength) {
        found.fault = tooLarge(`a frame of ${frameLength} bytes, over maxFrameLength ${maxFrameLength}`)
        break
      }
      if (initialBytesToStrip > frameLength) {
        found.fault = malformed(
          `a frame of ${frameLength} bytes, shorter than initialBytesToStrip ${initialBytesToStrip}`
        )
        break
      }
      if (frameLength - initialBytesToStrip > this.max) {
        found.fault = tooLarge(`a frame of ${frameLength - initialBytesToStrip} bytes, over ${this.max}`)
        break
      }
      if (buffered.length - start < frameLength) break
      frames.push(buffered.subarray(start + initialBytesToStrip, start + frameLength))
      start += frameLength
    }
    found.consumed = start
    return found
  }
}

const read32BE = (b: Uint8Array, at: number): number =>
  b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!)
const read32LE = (b: Uint8Array, at: number): number =>
  b[at + 3]! * 0x1000000 + ((b[at + 2]! << 16) | (b[at + 1]! << 8) | b[at]!)

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string")
    return error.message
  return String(error)
}

/** A custom decoder, its answers checked: a bad answer is bad input, not a crash of the pool. */
class CustomDecoder implements BuiltIn {
  readonly found: Found = { frames: [], consumed: 0, fault: undefined }
  max: number
  readonly limit = Infinity
  readonly name: string
  readonly decoder: Framing.Decoder
  constructor(framing: Framing.Custom, decoder: Framing.Decoder, maxMessageBytes: number) {
    this.name = framing.name
    this.decoder = decoder
    this.max = maxMessageBytes
  }
  decode(buffered: Uint8Array): Found {
    const found = this.found
    found.frames = noFrames
    found.fault = undefined
    found.consumed = 0
    let decoded: Framing.Decoded
    try {
      decoded = this.decoder.decode(buffered)
    } catch (error) {
      const tooLong = typeof error === "object" && error !== null && (error as Framing.FrameError).tooLarge === true
      found.fault = (tooLong ? tooLarge : malformed)(`decoder ${this.name} threw: ${describe(error)}`)
      return found
    }
    const consumed = decoded?.consumed
    if (typeof consumed !== "number" || !Number.isInteger(consumed) || consumed < 0 || consumed > buffered.length) {
      found.fault = malformed(
        `decoder ${this.name} returned consumed ${String(consumed)} with ${buffered.length} bytes buffered`
      )
      return found
    }
    const given = decoded.frames
    if (!Array.isArray(given)) {
      found.fault = malformed(`decoder ${this.name} returned frames that are not an array`)
      return found
    }
    found.frames = given
    found.consumed = consumed
    // A partial frame longer than any frame may be cannot complete.
    if (buffered.length - consumed > this.max)
      found.fault = tooLarge(`decoder ${this.name} holds a partial frame of ${buffered.length - consumed} bytes`)
    return found
  }
}

const MIN_CAPACITY = 4096

/**
 * The framing state of one connection: its decoder and the partial frame it
 * waits to complete. `push` returns the frames completed by a chunk (a view
 * valid until the next `push`); after them, `fault` tells whether the input
 * went bad (nothing after the bad frame is returned, then or later).
 */
export class Framer {
  fault: Fault | undefined = undefined
  readonly decoder: BuiltIn
  // The partial frame: buffer[start, end). `owned` when this module allocated
  // `buffer` (it may then append past `end`); otherwise it is a chunk's view.
  buffer: Uint8Array | undefined = undefined
  start = 0
  end = 0
  owned = false
  maxMessageBytes: number
  constructor(decoder: BuiltIn, maxMessageBytes: number) {
    this.decoder = decoder
    this.maxMessageBytes = maxMessageBytes
  }

  /** Bytes of the partial frame held. */
  get pending(): number {
    return this.end - this.start
  }

  /** Applies a new maxMessageBytes (setConfig changes it for live connections too). */
  setMaxMessageBytes(maxMessageBytes: number): void {
    this.maxMessageBytes = maxMessageBytes
    this.decoder.max = Math.min(this.decoder.limit, maxMessageBytes)
  }

  push(chunk: Uint8Array): ReadonlyArray<Uint8Array> {
    if (this.fault !== undefined) return noFrames
    const view = this.buffer === undefined ? chunk : this.append(chunk)
    const found = this.decoder.decode(view)
    let frames = found.frames
    // Frames over maxMessageBytes (a delimiter kept with a frame at its maximum, a custom decoder's).
    const max = this.maxMessageBytes
    for (let i = 0; i < frames.length; i++) {
      if (frames[i]!.length > max) {
        this.fault = tooLarge(`a frame of ${frames[i]!.length} bytes, over maxMessageBytes ${max}`)
        frames = frames.slice(0, i)
        break
      }
    }
    this.fault ??= found.fault
    if (this.fault !== undefined) {
      this.buffer = undefined
      this.start = this.end = 0
      return frames
    }
    const consumed = found.consumed
    if (consumed === view.length) {
      this.buffer = undefined
      this.start = this.end = 0
    } else if (view === chunk) {
      // Kept as a view of the chunk: copied only if more bytes come.
      this.buffer = chunk
      this.owned = false
      this.start = consumed
      this.end = chunk.length
    } else {
      this.start += consumed
    }
    return frames
  }

  // The partial frame followed by `chunk`, contiguous: appended in place when
  // the owned buffer has room past its end (bytes never handed out), else
  // copied with the partial frame into a buffer twice the size.
  private append(chunk: Uint8Array): Uint8Array {
    const buffer = this.buffer!
    const length = this.end - this.start + chunk.length
    if (this.owned && buffer.length - this.end >= chunk.length) {
      buffer.set(chunk, this.end)
      this.end += chunk.length
      return buffer.subarray(this.start, this.end)
    }
    const grown = new Uint8Array(Math.max(MIN_CAPACITY, length * 2))
    grown.set(buffer.subarray(this.start, this.end), 0)
    grown.set(chunk, this.end - this.start)
    this.buffer = grown
    this.owned = true
    this.start = 0
    this.end = length
    return grown.subarray(0, length)
  }
}

const noFrames: ReadonlyArray<Uint8Array> = []

/**
 * The framer of one connection for `framing` (any but the Go rule, which the
 * serve loop applies itself). A custom framing's `make` runs here: what it
 * throws is the caller's to report.
 */
export const make = (framing: Exclude<Framing.Framing, Framing.GoRule>, maxMessageBytes: number): Framer => {
  switch (framing._tag) {
    case "Lines":
      return new Framer(new LinesDecoder(framing, maxMessageBytes), maxMessageBytes)
    case "Delimiter":
      return new Framer(new DelimiterDecoder(framing, maxMessageBytes), maxMessageBytes)
    case "LengthField":
      return new Framer(new LengthFieldDecoder(framing, maxMessageBytes), maxMessageBytes)
    case "Custom":
      return new Framer(new CustomDecoder(framing, framing.make(), maxMessageBytes), maxMessageBytes)
  }
}
