import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Schema } from "effect"
import { Framing } from "../src/index.ts"
import * as Framer from "../src/internal/framing.ts"

// Any split of a byte stream into chunks yields the same frames and the same
// fault: one byte at a time, random sizes, all at once.

const between = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

// Bytes from a small alphabet, so delimiters, "\r" before "\n", and length
// fields of every size come up often.
const alphabet = [97, 98, 10, 13, 0, 1, 255, 58]
const stream = Arbitrary.map(
  Arbitrary.array(between(0, alphabet.length - 1), { minLength: 64, maxLength: 400 }),
  (picks) => Uint8Array.from(picks, (pick) => alphabet[pick]!)
)
const sizes = Arbitrary.array(between(1, 40), { minLength: 1, maxLength: 30 })

interface Outcome {
  readonly frames: ReadonlyArray<string>
  readonly fault: string | undefined
}

const run = (framing: Framing.Framing, chunks: ReadonlyArray<Uint8Array>, maxMessageBytes = 1 << 20): Outcome => {
  const framer = Framer.make(framing as Exclude<Framing.Framing, Framing.GoRule>, maxMessageBytes)
  const frames: Array<string> = []
  for (const chunk of chunks) {
    // Frames are views: copy them out, as a callback holding them would see them later.
    for (const frame of framer.push(chunk)) frames.push(Array.from(frame).join(","))
    if (framer.fault !== undefined) break
  }
  return { frames, fault: framer.fault?.reason }
}

const split = (bytes: Uint8Array, lengths: ReadonlyArray<number>): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let at = 0
  let i = 0
  while (at < bytes.length) {
    const length = lengths[i++ % lengths.length]!
    // A fresh copy, as a socket delivers: the framer must not rely on chunks' memory.
    chunks.push(bytes.slice(at, at + length))
    at += length
  }
  return chunks
}

const ones = (bytes: Uint8Array) => Array.from(bytes, (byte) => Uint8Array.of(byte))

const framings: ReadonlyArray<readonly [string, Framing.Framing, number?]> = [
  ["lines", Framing.lines()],
  ["lines, max 5", Framing.lines({ maxLength: 5 })],
  ["lines, max 5, kept", Framing.lines({ maxLength: 5, stripDelimiter: false })],
  ["lines under maxMessageBytes 6", Framing.lines(), 6],
  ["delimiter \\r\\n, max 7", Framing.delimiter("\r\n", { maxLength: 7 })],
  ["delimiter a\\0a, kept", Framing.delimiter(Uint8Array.of(97, 0, 97), { maxLength: 9, stripDelimiter: false })],
  ["length 1", Framing.lengthField({ lengthFieldLength: 1, maxFrameLength: 60 })],
  [
    "length 2 le, offset 1, strip 3",
    Framing.lengthField({ lengthFieldLength: 2, byteOrder: "LE", lengthFieldOffset: 1, initialBytesToStrip: 3 })
  ],
  ["length 1, adjust -2", Framing.lengthField({ lengthFieldLength: 1, lengthAdjustment: -2 })],
  [
    "length 4, adjust 1, strip 4",
    Framing.lengthField({ lengthFieldLength: 4, lengthAdjustment: 1, initialBytesToStrip: 4 })
  ],
  ["length 8 le", Framing.lengthField({ lengthFieldLength: 8, byteOrder: "LE" })],
  ["length 1 under maxMessageBytes 20", Framing.lengthField({ lengthFieldLength: 1 }), 20]
]

describe("Framing: any split of the stream gives the same frames and faults", () => {
  for (const [name, framing, max] of framings) {
    it.prop(
      name,
      { bytes: stream, lengths: sizes },
      ({ bytes, lengths }) => {
        const whole = run(framing, [bytes], max)
        assert.deepStrictEqual(run(framing, ones(bytes), max), whole)
        assert.deepStrictEqual(run(framing, split(bytes, lengths), max), whole)
      },
      { arbitrary: { runs: 150 } }
    )
  }

  it.prop(
    "lines: well-formed lines come out whole, however split",
    { lines: Arbitrary.array(Arbitrary.array(between(97, 99), { maxLength: 12 }), { maxLength: 20 }), lengths: sizes },
    ({ lines, lengths }) => {
      const text = lines.map((line) => `${String.fromCharCode(...line)}\r\n`).join("")
      const bytes = new TextEncoder().encode(text)
      const outcome = run(Framing.lines(), split(bytes, lengths))
      assert.deepStrictEqual(
        outcome.frames,
        lines.map((line) => line.join(","))
      )
      assert.isUndefined(outcome.fault)
    }
  )
})
