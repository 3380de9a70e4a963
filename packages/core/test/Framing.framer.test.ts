import { assert, describe, it } from "@effect/vitest"
import { Framing } from "../src/index.ts"
import * as Framer from "../src/internal/framing.ts"

// A custom decoder's answers checked (a bad answer is bad input, never a crash
// of the serve loop), and the framer's buffer of a partial frame: a live
// maxMessageBytes change, large partial frames, what is held after a fault.

const bytesOf = (chunk: Uint8Array | string) => (typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk)
const text = (frame: Uint8Array) => new TextDecoder().decode(frame)

const make = (framing: Framing.Framing, maxMessageBytes = 1 << 20) =>
  Framer.make(framing as Exclude<Framing.Framing, Framing.GoRule>, maxMessageBytes)

const push = (framer: Framer.Framer, chunk: Uint8Array | string) => framer.push(bytesOf(chunk)).map(text)

const answering = (answer: (buffered: Uint8Array) => unknown) =>
  Framing.custom("t", () => ({ decode: (buffered) => answer(buffered) as Framing.Decoded }))

const throwing = (error: unknown) =>
  answering(() => {
    throw error
  })

// A line decoder of one's own: every complete "\n"-ended line, the rest kept.
const ownLines = Framing.custom("own", () => ({
  decode(buffered) {
    const frames: Array<Uint8Array> = []
    let start = 0
    for (let at = buffered.indexOf(10); at >= 0; at = buffered.indexOf(10, start)) {
      frames.push(buffered.subarray(start, at))
      start = at + 1
    }
    return { frames, consumed: start }
  }
}))

const faultOf = (framing: Framing.Framing, chunk: Uint8Array | string, maxMessageBytes?: number) => {
  const framer = make(framing, maxMessageBytes)
  framer.push(bytesOf(chunk))
  return framer.fault
}

describe("a custom decoder's throw", () => {
  it("logs an Error's message, and any other thrown value as a string", () => {
    assert.deepStrictEqual(faultOf(throwing(new Error("bad header")), "x"), {
      reason: "framing",
      detail: "decoder t threw: bad header"
    })
    assert.deepStrictEqual(faultOf(throwing(new Framing.FrameError({ message: "odd" })), "x"), {
      reason: "framing",
      detail: "decoder t threw: odd"
    })
    assert.deepStrictEqual(faultOf(throwing({ message: "plain object" }), "x")?.detail, "decoder t threw: plain object")
    // A message that is not a string is not taken as one.
    assert.deepStrictEqual(faultOf(throwing({ message: 42 }), "x")?.detail, "decoder t threw: [object Object]")
    assert.deepStrictEqual(faultOf(throwing(7), "x")?.detail, "decoder t threw: 7")
  })

  it("throwing null or undefined is bad input too, not a crash", () => {
    assert.deepStrictEqual(faultOf(throwing(null), "x"), { reason: "framing", detail: "decoder t threw: null" })
    assert.deepStrictEqual(faultOf(throwing(undefined), "x"), {
      reason: "framing",
      detail: "decoder t threw: undefined"
    })
  })

  it("only a thrown value with tooLarge: true counts as size", () => {
    assert.strictEqual(
      faultOf(throwing(new Framing.FrameError({ message: "big", tooLarge: true })), "x")?.reason,
      "size"
    )
    assert.strictEqual(faultOf(throwing({ message: "big", tooLarge: true }), "x")?.reason, "size")
    assert.strictEqual(faultOf(throwing({ message: "big", tooLarge: "yes" }), "x")?.reason, "framing")
  })
})

describe("a custom decoder's answer", () => {
  it("a consumed that is missing, not whole, negative or past the bytes buffered is bad input", () => {
    assert.deepStrictEqual(
      faultOf(
        answering(() => undefined),
        "abc"
      ),
      {
        reason: "framing",
        detail: "decoder t returned consumed undefined with 3 bytes buffered"
      }
    )
    for (const consumed of [4, -1, 1.5, "1", null]) {
      const fault = faultOf(
        answering(() => ({ frames: [], consumed })),
        "abc"
      )
      assert.deepStrictEqual(
        fault,
        { reason: "framing", detail: `decoder t returned consumed ${String(consumed)} with 3 bytes buffered` },
        String(consumed)
      )
    }
  })

  it("frames that are not an array are bad input", () => {
    for (const frames of [undefined, null, "ab"])
      assert.deepStrictEqual(
        faultOf(
          answering(() => ({ frames, consumed: 0 })),
          "ab"
        ),
        { reason: "framing", detail: "decoder t returned frames that are not an array" },
        String(frames)
      )
  })

  it("a partial frame of exactly maxMessageBytes is held; one byte more closes with size", () => {
    const framer = make(ownLines, 10)
    assert.deepStrictEqual(push(framer, `ab\n${"c".repeat(10)}`), ["ab"])
    assert.isUndefined(framer.fault)
    assert.strictEqual(framer.pending, 10)
    assert.deepStrictEqual(push(framer, "\n"), ["c".repeat(10)])
    assert.deepStrictEqual(faultOf(ownLines, `ab\n${"c".repeat(11)}`, 10), {
      reason: "size",
      detail: "decoder own holds a partial frame of 11 bytes"
    })
  })

  it("a frame over maxMessageBytes closes, the frames before it are delivered", () => {
    const framer = make(ownLines, 4)
    assert.deepStrictEqual(push(framer, "abcd\nabcde\nx\n"), ["abcd"])
    assert.deepStrictEqual(framer.fault, { reason: "size", detail: "a frame of 5 bytes, over maxMessageBytes 4" })
  })
})

describe("the framer's buffer", () => {
  it("a lower maxMessageBytes applies to a live connection's partial frame and frames", () => {
    const framer = make(Framing.lines(), 100)
    assert.deepStrictEqual(push(framer, "abcdefgh\nab"), ["abcdefgh"])
    framer.setMaxMessageBytes(5)
    assert.deepStrictEqual(push(framer, "cdefg"), [])
    assert.deepStrictEqual(framer.fault, { reason: "size", detail: "a line over 5 bytes" })

    const kept = make(Framing.lines({ stripDelimiter: false }), 100)
    kept.setMaxMessageBytes(5)
    assert.deepStrictEqual(push(kept, "abcd\nabcde\n"), ["abcd\n"])
    assert.strictEqual(kept.fault?.reason, "size")
  })

  it("a higher maxMessageBytes does not lift the framing's own maxLength", () => {
    const framer = make(Framing.lines({ maxLength: 3 }), 2)
    framer.setMaxMessageBytes(1000)
    assert.deepStrictEqual(push(framer, "abc\n"), ["abc"])
    assert.deepStrictEqual(push(framer, "abcd\n"), [])
    assert.deepStrictEqual(framer.fault, { reason: "size", detail: "a line over 3 bytes" })
  })

  it("a frame far larger than the buffer's first capacity, in growing chunks, arrives whole", () => {
    const framer = make(Framing.delimiter(";"))
    const parts = ["a", "b".repeat(5000), "c".repeat(6000), "d".repeat(20_000), "e".repeat(3)]
    for (const part of parts) assert.deepStrictEqual(push(framer, part), [])
    assert.strictEqual(framer.pending, 31_004)
    const [frame, ...rest] = push(framer, ";x;")
    assert.strictEqual(frame, parts.join(""))
    assert.deepStrictEqual(rest, ["x"])
    assert.strictEqual(framer.pending, 0)
  })

  it("frames handed out stay intact while the partial frame after them grows", () => {
    const framer = make(Framing.lines())
    const kept: Array<Uint8Array> = []
    kept.push(...framer.push(bytesOf("x")))
    kept.push(...framer.push(bytesOf(`${"a".repeat(3000)}\nb`)))
    for (let i = 0; i < 10; i++) kept.push(...framer.push(bytesOf("b".repeat(1000))))
    kept.push(...framer.push(bytesOf("\n")))
    assert.deepStrictEqual(kept.map(text), [`x${"a".repeat(3000)}`, `b${"b".repeat(10_000)}`])
  })

  it("holds the partial frame's bytes, and nothing once a fault has closed the input", () => {
    const framer = make(Framing.lines({ maxLength: 8 }))
    assert.strictEqual(framer.pending, 0)
    push(framer, "ab")
    assert.strictEqual(framer.pending, 2)
    push(framer, "c\nde")
    assert.strictEqual(framer.pending, 2)
    push(framer, "fghijklm")
    assert.strictEqual(framer.fault?.reason, "size")
    assert.strictEqual(framer.pending, 0)
    assert.deepStrictEqual(push(framer, "\nok\n"), [])
  })
})
