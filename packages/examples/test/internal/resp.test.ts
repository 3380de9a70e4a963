/**
 * The RESP decoder on its own: commands split at every byte boundary, in one
 * byte chunks and at random give the same commands as all at once; pipelined
 * commands come out in order; protocol errors are reported after the
 * commands before them; a bulk string waited for is not parsed again.
 */
import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import * as Resp from "../../src/internal/resp.ts"

/** What the pool does with a decoder: buffer what is not consumed, append each chunk, decode. */
const feed = (chunks: ReadonlyArray<Uint8Array>, options?: Resp.DecoderOptions) => {
  const decoder = new Resp.RespDecoder(options)
  const commands: Array<Array<string>> = []
  let pending: Buffer = Buffer.alloc(0)
  for (const chunk of chunks) {
    pending = Buffer.concat([pending, chunk])
    const result = decoder.decode(pending)
    assert.isTrue(result.consumed >= 0 && result.consumed <= pending.length)
    for (const frame of result.frames)
      commands.push(Resp.commandArgs(frame).map((arg) => Buffer.from(arg).toString("latin1")))
    if (result.error !== undefined) return { commands, error: result.error, rest: pending.length - result.consumed }
    pending = Buffer.from(pending.subarray(result.consumed))
  }
  return { commands, error: undefined, rest: pending.length }
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

const binary = Buffer.from([0, 13, 10, 255, 42, 36]).toString("latin1")
const stream = Buffer.concat([
  Resp.encodeCommand(["SET", "key", "a value\r\nwith a line break"]),
  Buffer.from("PING\r\n"),
  Resp.encodeCommand(["GET", "key"]),
  Buffer.from("*0\r\n\r\n  \n"),
  Buffer.from(`set "quoted key" 'it\\'s' "\\x41\\n"\n`),
  Resp.encodeCommand(["ECHO", Buffer.from(binary, "latin1")]),
  Resp.encodeCommand(["ECHO", ""]),
  Buffer.from("*-1\r\n"),
  Resp.encodeCommand(["MSET", "a", "1", "b", "2"])
])
const expected = [
  ["SET", "key", "a value\r\nwith a line break"],
  ["PING"],
  ["GET", "key"],
  ["set", "quoted key", "it's", "A\n"],
  ["ECHO", binary],
  ["ECHO", ""],
  ["MSET", "a", "1", "b", "2"]
]

describe("RespDecoder", () => {
  it("decodes pipelined commands in one chunk, in order", () => {
    assert.deepStrictEqual(feed([stream]), { commands: expected, error: undefined, rest: 0 })
  })

  it("gives the same commands when the stream is split at every byte boundary", () => {
    for (let point = 0; point <= stream.length; point++) {
      assert.deepStrictEqual(feed(splitAt(stream, point)).commands, expected, `split at ${point}`)
    }
  })

  it("gives the same commands from one byte chunks and from random splits", () => {
    assert.deepStrictEqual(
      feed(splitAt(stream, ...Array.from({ length: stream.length }, (_, i) => i))).commands,
      expected
    )
    let seed = 42
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    for (let round = 0; round < 200; round++) {
      const points = Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * stream.length))
      assert.deepStrictEqual(feed(splitAt(stream, ...points.sort((a, b) => a - b))).commands, expected, `${points}`)
    }
  })

  it("keeps a partial command: its complete part is not parsed again", () => {
    const decoder = new Resp.RespDecoder()
    const first = decoder.decode(Buffer.from("*2\r\n$4\r\nECHO\r\n$5\r\nhel"))
    assert.deepStrictEqual([first.frames.length, first.consumed], [0, 0])
    // The parsed part is overwritten: a decoder that started over would reject it.
    const second = decoder.decode(Buffer.from("XXXXXXXXXXXXXXXXXXhello\r\n"))
    assert.strictEqual(second.frames.length, 1)
    assert.strictEqual(second.consumed, 25)
    assert.strictEqual(Buffer.from(second.frames[0]!).toString(), "XXXXXXXXXXXXXXXXXXhello\r\n")
  })

  it("waits for a big bulk string by its length, in many segments", () => {
    const value = Buffer.alloc(1024 * 1024, 120)
    const command = Resp.encodeCommand(["SET", "big", value])
    const chunks = splitAt(command, ...Array.from({ length: 255 }, (_, i) => (i + 1) * 4096))
    const result = feed(chunks)
    assert.strictEqual(result.commands.length, 1)
    assert.strictEqual(result.commands[0]![2]!.length, value.length)
  })

  const errors: ReadonlyArray<readonly [string, string | Buffer, Resp.DecoderOptions?]> = [
    ["invalid multibulk length", "*x\r\n"],
    ["invalid multibulk length", "*1x\r\n"],
    ["invalid multibulk length", "*3\n"],
    ["invalid multibulk length", "*4\r\n", { maxArgs: 3 }],
    ["expected '$', got 'G'", "*1\r\nGET\r\n"],
    ["invalid bulk length", "*1\r\n$-5\r\n"],
    ["invalid bulk length", "*1\r\n$abc\r\n"],
    ["invalid bulk length", "*1\r\n$9999999999999999999\r\n"],
    ["invalid bulk length", "*1\r\n$11\r\n", { maxBulkBytes: 10 }],
    ["invalid bulk length", `*1\r\n$${512 * 1024 * 1024 + 1}\r\n`],
    ["expected CRLF after a bulk string", "*1\r\n$3\r\nGETXX"],
    ["unbalanced quotes in request", 'SET "key value\r\n'],
    ["unbalanced quotes in request", 'SET "key"x 1\r\n'],
    ["too big inline request", Buffer.alloc(64 * 1024 + 1, 65)],
    ["too big mbulk count string", `*${"1".repeat(64 * 1024 + 1)}`],
    ["too big bulk count string", `*1\r\n$${"1".repeat(64 * 1024 + 1)}`]
  ]

  it("reports each protocol error, at once and in small chunks", () => {
    for (const [error, input, options] of errors) {
      const bytes = Buffer.from(input)
      assert.strictEqual(feed([bytes], options).error, error, JSON.stringify(input))
      // One byte chunks, or 997 byte ones for the 64 KB lines (the test's buffering is quadratic).
      const step = bytes.length > 1000 ? 997 : 1
      const points = Array.from({ length: Math.ceil(bytes.length / step) }, (_, i) => i * step)
      assert.strictEqual(feed(splitAt(bytes, ...points), options).error, error, JSON.stringify(input).slice(0, 40))
    }
  })

  it("returns the commands before a protocol error, and does not consume the bad one", () => {
    const result = feed([
      Buffer.concat([Buffer.from("PING\r\n"), Resp.encodeCommand(["GET", "k"]), Buffer.from("*1\r\n$x\r\n")])
    ])
    assert.deepStrictEqual(result, { commands: [["PING"], ["GET", "k"]], error: "invalid bulk length", rest: 8 })
  })
})

describe("splitInline", () => {
  const split = (line: string) =>
    Resp.splitInline(Buffer.from(line, "latin1"))?.map((a) => Buffer.from(a).toString("latin1"))

  it("splits like redis-server's sdssplitargs", () => {
    assert.deepStrictEqual(split("  SET  k\tv "), ["SET", "k", "v"])
    assert.deepStrictEqual(split(`"a b" 'c d' "\\t\\x7a\\q" 'x\\y'`), ["a b", "c d", "\tzq", "x\\y"])
    assert.deepStrictEqual(split(`a"b c"d`), undefined)
    assert.deepStrictEqual(split(`a"b c"`), ["ab c"])
    assert.deepStrictEqual(split(`""`), [""])
    assert.deepStrictEqual(split(""), [])
    assert.deepStrictEqual(split(`'open`), undefined)
  })
})

describe("reply encoders", () => {
  it("encodes RESP2 replies", () => {
    const s = (b: Uint8Array) => Buffer.from(b).toString("latin1")
    assert.strictEqual(s(Resp.simple("OK")), "+OK\r\n")
    assert.strictEqual(s(Resp.error("ERR bad\r\nthing")), "-ERR bad thing\r\n")
    assert.strictEqual(s(Resp.integer(-2)), ":-2\r\n")
    assert.strictEqual(s(Resp.integer(9223372036854775807n)), ":9223372036854775807\r\n")
    assert.strictEqual(s(Resp.bulk("héllo")), "$6\r\nh\xc3\xa9llo\r\n")
    assert.strictEqual(s(Resp.nullBulk), "$-1\r\n")
    assert.strictEqual(s(Resp.bulkArray(["a", ""])), "*2\r\n$1\r\na\r\n$0\r\n\r\n")
    assert.strictEqual(s(Resp.array([])), "*0\r\n")
  })
})
