/**
 * The memcached decoder on its own: a pipelined stream split at every byte
 * boundary, in one-byte chunks and at random gives the same frames as all at
 * once; data blocks holding `\r\n` are taken by length; an oversized block is
 * swallowed without being buffered; a line too long is refused with a frame
 * holding no `\n` and nothing after it.
 */
import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import { makeDecoder } from "../../src/internal/memcachedDecoder.ts"

const options = { maxItemSize: 1024, maxLineLength: 2048 }

/** What the pool does with a decoder: keep what is not consumed, append each chunk, decode. */
const feed = (chunks: ReadonlyArray<Uint8Array>, decoderOptions = options) => {
  const decoder = makeDecoder(decoderOptions)
  const frames: Array<string> = []
  let pending: Buffer = Buffer.alloc(0)
  let mostBuffered = 0
  for (const chunk of chunks) {
    pending = Buffer.concat([pending, chunk])
    mostBuffered = Math.max(mostBuffered, pending.length)
    const result = decoder.decode(pending)
    assert.isTrue(result.consumed >= 0 && result.consumed <= pending.length)
    for (const frame of result.frames) frames.push(Buffer.from(frame).toString("latin1"))
    pending = Buffer.from(pending.subarray(result.consumed))
  }
  return { frames, rest: pending.length, mostBuffered }
}

const splitAt = (bytes: Buffer, ...points: ReadonlyArray<number>): Array<Buffer> => {
  const chunks: Array<Buffer> = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point))
    from = point
  }
  return chunks
}

const bytesOf = (text: string) => Buffer.from(text, "latin1")
const binary = Buffer.from([0, 13, 10, 255, 42, 13, 10]).toString("latin1")

const commands = [
  "set a 0 0 5\r\nhello\r\n",
  `set bin 7 0 7\r\n${binary}\r\n`,
  "get a bin\r\n",
  "gets a\n",
  "cas a 0 0 2 1 noreply\r\nhi\r\n",
  "append a 0 0 0\r\n\r\n",
  "incr n 5\r\n",
  "set k 0 0 5\r\nhelloXX\r\n",
  "set kkk 0 0 -1\r\n",
  "bogus command\r\n",
  "\r\n",
  "delete a noreply\r\n",
  "gat 100 a bin\r\n"
]
const stream = bytesOf(commands.join(""))
// The frames, as the command logic sees them: a bad data chunk takes <bytes> + 2 bytes, and the rest is a line.
const expected = [...commands.slice(0, 7), "set k 0 0 5\r\nhelloXX", "\r\n", ...commands.slice(8)]

describe("memcached decoder", () => {
  it("cuts a pipelined stream into whole commands, a line plus its data block", () => {
    const { frames, rest } = feed([stream])
    assert.deepStrictEqual(frames, expected)
    assert.strictEqual(rest, 0)
  })

  it("gives the same frames for a split at every byte boundary", () => {
    for (let point = 0; point <= stream.length; point++) {
      const { frames, rest } = feed(splitAt(stream, point))
      assert.deepStrictEqual(frames, expected, `split at ${point}`)
      assert.strictEqual(rest, 0)
    }
  })

  it("gives the same frames in one-byte chunks and in random chunks", () => {
    assert.deepStrictEqual(
      feed(splitAt(stream, ...Array.from({ length: stream.length }, (_, i) => i))).frames,
      expected
    )
    let seed = 19
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    for (let round = 0; round < 200; round++) {
      const points: Array<number> = []
      for (let at = 0; at < stream.length; at += 1 + Math.floor(random() * 12)) points.push(at)
      assert.deepStrictEqual(feed(splitAt(stream, ...points)).frames, expected, `round ${round}`)
    }
  })

  it("gives the same frames and the same refusal at every split, with an oversized block and a too-long line", () => {
    const hostile = Buffer.concat([
      stream,
      bytesOf(`set big 0 0 3000\r\n${"b".repeat(3000)}\r\nget a\r\n`),
      bytesOf(`${"x".repeat(2100)}\r\nget after\r\n`)
    ])
    const whole = feed([hostile])
    assert.deepStrictEqual(whole.frames, [...expected, "set big 0 0 3000\r\n", "get a\r\n", "x".repeat(2048)])
    for (let point = 0; point <= hostile.length; point += 7) {
      assert.deepStrictEqual(feed(splitAt(hostile, point)).frames, whole.frames, `split at ${point}`)
    }
    let seed = 7
    for (let round = 0; round < 50; round++) {
      const points: Array<number> = []
      for (let at = 0; at < hostile.length; at += 1 + (seed % 300)) {
        points.push(at)
        seed = (seed * 48271) % 2147483647
      }
      assert.deepStrictEqual(feed(splitAt(hostile, ...points)).frames, whole.frames, `round ${round}`)
    }
  })

  it("waits for a whole data block, however it arrives", () => {
    const decoder = makeDecoder(options)
    assert.deepStrictEqual(decoder.decode(bytesOf("set k 0 0 10\r\n0123")), { frames: [], consumed: 0 })
    assert.deepStrictEqual(decoder.decode(bytesOf("set k 0 0 10\r\n0123456789\r")).frames, [])
    const done = decoder.decode(bytesOf("set k 0 0 10\r\n0123456789\r\nget"))
    assert.deepStrictEqual(
      done.frames.map((frame) => Buffer.from(frame).toString()),
      ["set k 0 0 10\r\n0123456789\r\n"]
    )
    assert.strictEqual(done.consumed, 26)
  })

  it("frames a storage line that does not parse as a line alone: what follows is commands", () => {
    const longKey = "k".repeat(251)
    assert.deepStrictEqual(feed([bytesOf(`set ${longKey} 0 0 5\r\nhello\r\n`)]).frames, [
      `set ${longKey} 0 0 5\r\n`,
      "hello\r\n"
    ])
    assert.deepStrictEqual(feed([bytesOf("set k 0 0\r\nhello\r\n")]).frames, ["set k 0 0\r\n", "hello\r\n"])
  })

  it("swallows an oversized block as it arrives, without buffering it", () => {
    const block = Buffer.alloc(5000, 0x78)
    const bytes = Buffer.concat([bytesOf("set big 0 0 5000\r\n"), block, bytesOf("\r\nget big\r\n")])
    const chunks = splitAt(bytes, ...Array.from({ length: Math.floor(bytes.length / 100) }, (_, i) => i * 100))
    const { frames, rest, mostBuffered } = feed(chunks)
    assert.deepStrictEqual(frames, ["set big 0 0 5000\r\n", "get big\r\n"])
    assert.strictEqual(rest, 0)
    assert.isAtMost(mostBuffered, 200)
  })

  it("refuses a line over 2048 bytes with a frame holding no newline, and drops everything after it", () => {
    const long = `${"x".repeat(3000)}\r\nget a\r\n`
    for (const chunks of [[bytesOf(long)], splitAt(bytesOf(long), 1000, 2000, 2500, 3001)]) {
      const { frames, rest } = feed([bytesOf("get a\r\n"), ...chunks, bytesOf("version\r\n")])
      assert.strictEqual(frames.length, 2)
      assert.strictEqual(frames[0], "get a\r\n")
      assert.strictEqual(frames[1], "x".repeat(2048))
      assert.strictEqual(rest, 0)
    }
    // Without a newline yet: refused as soon as it is over the limit.
    assert.deepStrictEqual(feed([bytesOf("y".repeat(2049))]).frames, ["y".repeat(2048)])
    assert.deepStrictEqual(feed([bytesOf("y".repeat(2048))]).frames, [])
  })

  it("takes a line of exactly 2048 bytes however it is split, its \\r\\n included", () => {
    const line = `touch k${" ".repeat(2040)}0`
    assert.strictEqual(line.length, 2048)
    const bytes = bytesOf(`${line}\r\n`)
    for (let point = 0; point <= bytes.length; point++) {
      assert.deepStrictEqual(feed(splitAt(bytes, point)).frames, [`${line}\r\n`], `split at ${point}`)
    }
  })

  it("takes a retrieval's long key list, up to the item size limit", () => {
    const keys = Array.from({ length: 400 }, (_, i) => `key-${i}`).join(" ")
    const line = `get ${keys}\r\n`
    const big = { maxItemSize: 1024 * 1024, maxLineLength: 2048 }
    assert.isAbove(line.length, 2048)
    assert.deepStrictEqual(feed(splitAt(bytesOf(line), 1000, 2100, 3000), big).frames, [line])
    assert.deepStrictEqual(feed([bytesOf(line)]).frames, [line.slice(0, 2048)])
  })
})
