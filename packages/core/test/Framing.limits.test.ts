import { assert, describe, it } from "@effect/vitest"
import { Framing } from "../src/index.ts"
import * as Framer from "../src/internal/framing.ts"

// The built-in decoders at their boundaries: exactly a maximum is accepted,
// one byte more closes the connection, with the fault's reason and detail;
// the length field's widths, byte orders, offset, adjustment and strip.

const bytesOf = (chunk: Uint8Array | string) => (typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk)
const text = (frame: Uint8Array) => String.fromCharCode(...frame)

const run = (framing: Framing.Framing, chunks: ReadonlyArray<Uint8Array | string>, maxMessageBytes = 1 << 20) => {
  const framer = Framer.make(framing as Exclude<Framing.Framing, Framing.GoRule>, maxMessageBytes)
  const frames: Array<string> = []
  for (const chunk of chunks) for (const frame of framer.push(bytesOf(chunk))) frames.push(text(frame))
  return { frames, fault: framer.fault, framer }
}

const repeat = (byte: string, n: number) => byte.repeat(n)

describe("lines at their maximum", () => {
  const max3 = Framing.lines({ maxLength: 3 })

  it("a line of exactly maxLength is delivered, one byte more closes with size", () => {
    const exact = run(max3, ["abc\n", "ab\r\n"])
    assert.deepStrictEqual(exact.frames, ["abc", "ab"])
    assert.isUndefined(exact.fault)
    const over = run(max3, ["ab\nabcd\nx\n"])
    assert.deepStrictEqual(over.frames, ["ab"])
    assert.deepStrictEqual(over.fault, { reason: "size", detail: "a line over 3 bytes" })
  })

  it("a partial line closes as soon as it cannot be a line of maxLength, before its end arrives", () => {
    assert.deepStrictEqual(run(max3, ["abcde"]).fault, { reason: "size", detail: "a line over 3 bytes" })
    assert.deepStrictEqual(run(max3, ["abcd"]).fault, { reason: "size", detail: "a line over 3 bytes" })
    // "abc\r" may still be "abc\r\n".
    assert.isUndefined(run(max3, ["abc\r"]).fault)
    assert.deepStrictEqual(run(max3, ["abc\r", "\n"]).frames, ["abc"])
  })

  it("nothing is delivered after a fault, not even good lines that arrive later", () => {
    const { framer } = run(max3, ["abcdef"])
    assert.deepStrictEqual(framer.push(bytesOf("\nok\nok\nok\nok\n")), [])
    assert.strictEqual(framer.fault?.reason, "size")
    const length = run(Framing.lengthField({ lengthFieldLength: 1, maxFrameLength: 5 }), [Uint8Array.of(9)]).framer
    assert.strictEqual(length.fault?.reason, "size")
    assert.deepStrictEqual(length.push(Uint8Array.of(1, 97, 1, 98)), [])
  })

  it("with the delimiter kept, a line at maxMessageBytes with its delimiter is over it", () => {
    const kept = run(Framing.lines({ stripDelimiter: false }), ["abcd\nabcde\nxy\n"], 5)
    assert.deepStrictEqual(kept.frames, ["abcd\n"])
    assert.deepStrictEqual(kept.fault, { reason: "size", detail: "a frame of 6 bytes, over maxMessageBytes 5" })
  })
})

describe("delimiter at its maximum", () => {
  it("a frame of exactly maxLength before its delimiter is delivered, one byte more closes", () => {
    const max3 = Framing.delimiter(";", { maxLength: 3 })
    assert.deepStrictEqual(run(max3, ["abc;a;"]).frames, ["abc", "a"])
    const over = run(max3, ["a;abcd;b;"])
    assert.deepStrictEqual(over.frames, ["a"])
    assert.deepStrictEqual(over.fault, { reason: "size", detail: "a frame over 3 bytes before its delimiter" })
  })

  it("a partial frame closes once maxLength plus the delimiter's length bytes hold no delimiter", () => {
    const crlf = Framing.delimiter("\r\n", { maxLength: 3 })
    assert.isUndefined(run(crlf, ["abc\r"]).fault)
    assert.deepStrictEqual(run(crlf, ["abc\r", "\n"]).frames, ["abc"])
    assert.deepStrictEqual(run(crlf, ["abc\rx"]).fault, {
      reason: "size",
      detail: "a frame over 3 bytes before its delimiter"
    })
    assert.strictEqual(run(crlf, ["ab", "cdefgh"]).fault?.reason, "size")
  })

  it("a delimiter first in a chunk ends an empty frame", () => {
    assert.deepStrictEqual(run(Framing.delimiter(";"), [";a;", ";"]).frames, ["", "a", ""])
  })

  it("a partial frame shorter than the delimiter, holding its start, completes with the next chunk", () => {
    // After "a<END>", the partial "b<E" (3 bytes) is shorter than "<END>" and holds its first bytes.
    assert.deepStrictEqual(run(Framing.delimiter("<END>"), ["a<END>b<E", "ND>"]).frames, ["a", "b"])
    assert.deepStrictEqual(run(Framing.delimiter("<END>"), ["a<END><", "END>"]).frames, ["a", ""])
  })

  it("a delimiter that starts at the end of the bytes so far is found when the rest arrives", () => {
    const framing = Framing.delimiter("END", { stripDelimiter: false })
    assert.deepStrictEqual(run(framing, ["aEN", "Db", "E", "N", "D"]).frames, ["aEND", "bEND"])
  })
})

describe("length fields: widths, byte orders and limits", () => {
  const body = (n: number) => repeat("x", n)

  it("a 2-byte field reads its high byte first (BE) or second (LE)", () => {
    const be = run(Framing.lengthField({ lengthFieldLength: 2, initialBytesToStrip: 2 }), [
      Uint8Array.of(0x01, 0x2c),
      body(300)
    ])
    assert.deepStrictEqual(be.frames, [body(300)])
    const le = run(Framing.lengthField({ lengthFieldLength: 2, byteOrder: "LE", initialBytesToStrip: 2 }), [
      Uint8Array.of(0x2c, 0x01),
      body(300)
    ])
    assert.deepStrictEqual(le.frames, [body(300)])
    const leAfterHeader = run(
      Framing.lengthField({ lengthFieldLength: 2, byteOrder: "LE", lengthFieldOffset: 1, initialBytesToStrip: 3 }),
      [Uint8Array.of(0x07, 0x2c, 0x01), body(300)]
    )
    assert.deepStrictEqual(leAfterHeader.frames, [body(300)])
  })

  it("4- and 8-byte fields read every byte in the given order", () => {
    const fault = (lengthFieldLength: 4 | 8, byteOrder: "BE" | "LE", header: Array<number>) =>
      run(Framing.lengthField({ lengthFieldLength, byteOrder, maxFrameLength: 1000 }), [Uint8Array.from(header)]).fault
    const over = (frameLength: number) => ({
      reason: "size",
      detail: `a frame of ${frameLength} bytes, over maxFrameLength 1000`
    })
    assert.deepStrictEqual(fault(4, "BE", [1, 0, 0, 0]), over(2 ** 24 + 4))
    assert.deepStrictEqual(fault(4, "LE", [0, 0, 0, 1]), over(2 ** 24 + 4))
    assert.deepStrictEqual(fault(4, "BE", [0, 1, 0, 0]), over(2 ** 16 + 4))
    assert.deepStrictEqual(fault(8, "BE", [0, 0, 0, 1, 0, 0, 0, 0]), over(2 ** 32 + 8))
    assert.deepStrictEqual(fault(8, "LE", [0, 0, 0, 0, 1, 0, 0, 0]), over(2 ** 32 + 8))
    assert.deepStrictEqual(fault(8, "BE", [0, 0, 0, 0, 0, 0, 4, 0]), over(1024 + 8))
    const small = run(Framing.lengthField({ lengthFieldLength: 8, byteOrder: "LE", initialBytesToStrip: 8 }), [
      Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0),
      "abc"
    ])
    assert.deepStrictEqual(small.frames, ["abc"])
  })

  it("an 8-byte field over 2^53 - 1 is bad input, named as such", () => {
    const over = run(Framing.lengthField({ lengthFieldLength: 8 }), [Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 0)])
    assert.deepStrictEqual(over.fault, { reason: "framing", detail: "a length field over 2^53 - 1" })
  })

  it("a frame of exactly maxFrameLength (header included) is delivered, one byte more closes", () => {
    const framing = Framing.lengthField({ lengthFieldLength: 1, maxFrameLength: 5 })
    assert.deepStrictEqual(run(framing, [Uint8Array.of(4), "abcd"]).frames, ["\x04abcd"])
    const over = run(framing, [Uint8Array.of(1, 97, 5)])
    assert.deepStrictEqual(over.frames, ["\x01a"])
    assert.deepStrictEqual(over.fault, { reason: "size", detail: "a frame of 6 bytes, over maxFrameLength 5" })
  })

  it("an adjustment may shrink a frame to its header, not below", () => {
    const framing = Framing.lengthField({ lengthFieldLength: 1, lengthAdjustment: -2 })
    assert.deepStrictEqual(run(framing, [Uint8Array.of(2, 3, 97)]).frames, ["\x02", "\x03a"])
    assert.deepStrictEqual(run(framing, [Uint8Array.of(1)]).fault, {
      reason: "framing",
      detail: "a negative length (field 1, adjustment -2)"
    })
  })

  it("a frame may be stripped entirely, but not shorter than initialBytesToStrip", () => {
    const framing = Framing.lengthField({ lengthFieldLength: 1, initialBytesToStrip: 4 })
    assert.deepStrictEqual(run(framing, [Uint8Array.of(3, 97, 98, 99, 5, 1, 2, 3, 104, 105)]).frames, ["", "hi"])
    const short = run(framing, [Uint8Array.of(2, 97, 98)])
    assert.deepStrictEqual(short.frames, [])
    assert.deepStrictEqual(short.fault, {
      reason: "framing",
      detail: "a frame of 3 bytes, shorter than initialBytesToStrip 4"
    })
  })

  it("maxMessageBytes counts what is delivered (the stripped header not counted) and closes on the header", () => {
    const framing = Framing.lengthField({ lengthFieldLength: 2, initialBytesToStrip: 2 })
    assert.deepStrictEqual(run(framing, [Uint8Array.of(0, 10), body(10)], 10).frames, [body(10)])
    // Only the header has arrived: the frame is known to be too large already.
    const over = run(framing, [Uint8Array.of(0, 11)], 10)
    assert.deepStrictEqual(over.fault, { reason: "size", detail: "a frame of 11 bytes, over 10" })
    const kept = Framing.lengthField({ lengthFieldLength: 2 })
    assert.deepStrictEqual(run(kept, [Uint8Array.of(0, 8), body(8)], 10).frames, [`\0\x08${body(8)}`])
    assert.strictEqual(run(kept, [Uint8Array.of(0, 9)], 10).fault?.reason, "size")
  })
})
