/**
 * The framing rule of the Go original (SPEC.md), the default: a read that
 * does not fill the buffer ends the message. The serve loop polls whole
 * chunks, each standing for Go's reads of it, all full but the last.
 */
import type { Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import { concat } from "./bytes.ts"

/**
 * The most one poll may take: a whole message over maxMessageBytes is never
 * needed, one byte past it shows that it is too large.
 */
export const pollRoom = (config: ManagerConfig): number => Math.max(config.bufferSize, config.maxMessageBytes + 1)

// A read of `length` bytes ends the message unless it filled the buffer.
const endsMessage = (length: number, bufferSize: number): boolean => length % bufferSize !== 0 || length === 0

/**
 * Frames one message starting with `first` (keep reading while each read
 * filled bufferSize), but never waits for a continuation that has not
 * arrived: an exact multiple of bufferSize is delivered as is. Polls take
 * whole chunks, so a large message is not cut into bufferSize pieces to be
 * copied back together. `undefined` when the message is over maxMessageBytes.
 */
export const frameGoMessage = (
  transport: Transport,
  first: Uint8Array,
  config: ManagerConfig,
  room: number
): Uint8Array | undefined => {
  const bufferSize = config.bufferSize
  const max = config.maxMessageBytes
  let total = first.length
  if (endsMessage(total, bufferSize)) return total > max ? undefined : first
  const chunks = [first]
  while (total <= max) {
    const chunk = transport.poll(Math.max(bufferSize, room - total))
    if (chunk === undefined) break
    chunks.push(chunk)
    total += chunk.length
    if (endsMessage(chunk.length, bufferSize)) break
  }
  return total > max ? undefined : concat(chunks, total)
}
