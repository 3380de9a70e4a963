/**
 * Frames the memcached ASCII protocol: one frame per complete command, that is
 * a command line (through its `\n`), plus, for a storage command whose line
 * parses, its data block of `<bytes>` and the two bytes that should be `\r\n`
 * (the command checks them: `CLIENT_ERROR bad data chunk`). A frame may have
 * arrived in any number of segments, and one segment may hold many frames:
 * the decoder keeps what it needs between calls (one decoder per connection).
 *
 * Like memcached:
 * - a line may end with `\n` alone (the `\r` before it is optional);
 * - a storage command whose block is over the item size limit is framed as its
 *   line alone (the command answers `SERVER_ERROR object too large for cache`)
 *   and its block is swallowed as it arrives, never buffered;
 * - a command line longer than 2048 bytes is refused, except a retrieval's,
 *   whose key lists may be long (bounded here by the item size limit). The
 *   refused line is framed as its first bytes without any `\n`, a frame no
 *   client can send: the command answers `CLIENT_ERROR line too long` and
 *   closes the connection, and everything after it is dropped.
 */
import { isRetrieval, mayStore, parseCommand } from "./memcachedParser.ts"

/** A decoder's answer: the complete frames, and how many bytes they used (the `Framing.Decoder` contract). */
export interface Decoded {
  readonly frames: ReadonlyArray<Uint8Array>
  readonly consumed: number
}

/** Limits of the decoder. */
export interface DecoderOptions {
  /** The largest data block taken (memcached's item size limit, `-I`). */
  readonly maxItemSize: number
  /** The longest command line, except a retrieval's (memcached: 2048). */
  readonly maxLineLength: number
}

/** The frames of one connection. */
export interface MemcachedDecoder {
  decode(buffered: Uint8Array): Decoded
}

const LF = 0x0a
const CR = 0x0d
const noFrames: ReadonlyArray<Uint8Array> = []

/** Decodes `bytes[start, end)` as latin1: one character per byte. */
export const latin1 = (bytes: Uint8Array, start: number, end: number): string =>
  // Socket chunks are Buffers already; a pool-owned buffer gets a view (no copy).
  (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString(
    "latin1",
    start,
    end
  )

/** The end of the line starting at `start` whose `\n` is at `lf`, without the `\r` before it. */
export const lineEnd = (bytes: Uint8Array, start: number, lf: number): number =>
  lf > start && bytes[lf - 1] === CR ? lf - 1 : lf

/**
 * The length of the data block that follows this line and whether it is over
 * `maxItemSize`, or -1 when the line is not a storage command that parses
 * (memcached reads no block then: the bytes that follow are commands).
 */
const blockLength = (bytes: Uint8Array, start: number, end: number): number => {
  if (end - start < 4 || !mayStore(bytes[start]!)) return -1
  const command = parseCommand(latin1(bytes, start, end))
  return command._tag === "Store" ? command.bytes : -1
}

/** A decoder for one connection. */
export const makeDecoder = (options: DecoderOptions): MemcachedDecoder => {
  const { maxItemSize, maxLineLength } = options
  const maxRetrievalLine = Math.max(maxItemSize, maxLineLength)
  // Bytes of an oversized block still to drop.
  let swallow = 0
  // Set once a line was too long: the connection is being closed.
  let refused = false
  // How many bytes from the start of what is buffered are known to hold no `\n`.
  let scanned = 0
  return {
    decode(buffered) {
      const frames: Array<Uint8Array> = []
      let pos = 0
      const length = buffered.length
      if (refused) return { frames: noFrames, consumed: length }
      while (pos < length) {
        if (swallow > 0) {
          const dropped = Math.min(swallow, length - pos)
          swallow -= dropped
          pos += dropped
          continue
        }
        const lf = buffered.indexOf(LF, pos + scanned)
        // Without its \n yet, a final \r may be the start of the line's end: it does not count either.
        const end = lf >= 0 ? lineEnd(buffered, pos, lf) : buffered[length - 1] === CR ? length - 1 : length
        if (end - pos > maxLineLength) {
          const retrieval = isRetrieval(latin1(buffered, pos, pos + Math.min(16, end - pos)))
          if (!retrieval || end - pos > maxRetrievalLine) {
            refused = true
            frames.push(buffered.subarray(pos, pos + maxLineLength))
            return { frames, consumed: length }
          }
        }
        if (lf < 0) {
          scanned = length - pos
          break
        }
        scanned = 0
        const block = blockLength(buffered, pos, end)
        if (block < 0 || block > maxItemSize) {
          frames.push(buffered.subarray(pos, lf + 1))
          pos = lf + 1
          if (block > maxItemSize) swallow = block + 2
          continue
        }
        const frameEnd = lf + 1 + block + 2
        if (frameEnd > length) {
          // Wait for the block; the line is scanned again then (it is short).
          break
        }
        frames.push(buffered.subarray(pos, frameEnd))
        pos = frameEnd
      }
      return { frames, consumed: pos }
    }
  }
}
