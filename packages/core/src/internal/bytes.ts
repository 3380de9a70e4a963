/**
 * Byte helpers shared by the serve loop and the in-memory connection.
 */
const encoder = new TextEncoder()

/** `data` as bytes (strings as UTF-8). */
export const toBytes = (data: Uint8Array | string): Uint8Array =>
  typeof data === "string" ? encoder.encode(data) : data

/** The `chunks` (`total` bytes in all) as one array; a single chunk is returned as is. */
export const concat = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
