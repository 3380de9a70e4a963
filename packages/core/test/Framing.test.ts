import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { Framing, ManagerConfig } from "../src/index.ts"
import * as Framer from "../src/internal/framing.ts"

const parsed = (spec: string): Framing.Framing => {
  const result = Framing.parse(spec)
  if (Result.isFailure(result)) throw new Error(`${spec}: ${result.failure}`)
  return result.success
}

const frames = (framing: Framing.Framing, ...chunks: Array<Uint8Array | string>) => {
  const framer = Framer.make(framing as Exclude<Framing.Framing, Framing.GoRule>, 1 << 20)
  const out: Array<string> = []
  for (const chunk of chunks) {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk
    for (const frame of framer.push(bytes)) out.push(new TextDecoder().decode(frame))
  }
  return { frames: out, fault: framer.fault }
}

describe("Framing.parse and format", () => {
  it("reads every built-in spec", () => {
    assert.deepStrictEqual(parsed("go"), Framing.goRule)
    assert.deepStrictEqual(parsed("lines"), Framing.lines())
    assert.deepStrictEqual(parsed("lines:8192"), Framing.lines({ maxLength: 8192 }))
    assert.deepStrictEqual(parsed("lines:keep"), Framing.lines({ stripDelimiter: false }))
    assert.deepStrictEqual(
      parsed("delimiter:\\r\\n:100:keep"),
      Framing.delimiter("\r\n", { maxLength: 100, stripDelimiter: false })
    )
    assert.deepStrictEqual(parsed("delimiter:\\x00\\x3a"), Framing.delimiter(Uint8Array.of(0, 58)))
    assert.deepStrictEqual(parsed("length:4:be"), Framing.lengthField({ lengthFieldLength: 4 }))
    assert.deepStrictEqual(
      parsed("length:2:le:offset=2,adjust=-2,strip=4,max=65536"),
      Framing.lengthField({
        lengthFieldLength: 2,
        byteOrder: "LE",
        lengthFieldOffset: 2,
        lengthAdjustment: -2,
        initialBytesToStrip: 4,
        maxFrameLength: 65536
      })
    )
  })

  it("format is the inverse of parse for the built-ins", () => {
    const framings = [
      Framing.goRule,
      Framing.lines(),
      Framing.lines({ maxLength: 10, stripDelimiter: false }),
      Framing.delimiter(Uint8Array.of(0, 58, 44, 92, 13, 10, 9, 200, 65)),
      Framing.delimiter("END", { maxLength: 7 }),
      Framing.lengthField({ lengthFieldLength: 8, byteOrder: "LE", lengthAdjustment: -3, maxFrameLength: 9 }),
      Framing.lengthField({ lengthFieldLength: 1, lengthFieldOffset: 3, initialBytesToStrip: 4 })
    ]
    for (const framing of framings) assert.deepStrictEqual(parsed(Framing.format(framing)), framing)
    assert.strictEqual(
      Framing.format(Framing.custom("resp", () => ({ decode: () => ({ frames: [], consumed: 0 }) }))),
      "custom:resp"
    )
  })

  it("rejects bad specs with a message saying what is expected", () => {
    for (const spec of [
      "",
      "line",
      "lines:0",
      "lines:x",
      "length:3",
      "length:4:be:speed=1",
      "delimiter:",
      "delimiter:\\q",
      "custom:x",
      "go:1"
    ]) {
      const result = Framing.parse(spec)
      assert.isTrue(Result.isFailure(result), spec)
      if (Result.isFailure(result)) assert.match(result.failure, /expected|custom|bytes/, spec)
    }
  })

  it.effect("ManagerConfig takes a Framing or a spec, and names the field of a bad one", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make({ framing: "length:2" })
      assert.deepStrictEqual(config.framing, Framing.lengthField({ lengthFieldLength: 2 }))
      assert.strictEqual(ManagerConfig.toJson(config).framing, "length:2:be")
      const error = yield* Effect.flip(ManagerConfig.make({ framing: "length:3" }))
      assert.strictEqual(error.issues[0]?.field, "framing")
      const invalid = yield* Effect.flip(ManagerConfig.make({ framing: Framing.lines({ maxLength: -1 }) }))
      assert.match(invalid.issues[0]?.message ?? "", /maxLength/)
    })
  )
})

describe("the built-in decoders", () => {
  it("lines strip \\n and \\r\\n, keep a lone \\r, and keep the delimiter when asked", () => {
    assert.deepStrictEqual(frames(Framing.lines(), "a\r\nb\nc\rd\n\n").frames, ["a", "b", "c\rd", ""])
    assert.deepStrictEqual(frames(Framing.lines({ stripDelimiter: false }), "a\r\nb\n").frames, ["a\r\n", "b\n"])
  })

  it("a line of exactly maxLength ending in \\r\\n split before the \\n is no fault", () => {
    const outcome = frames(Framing.lines({ maxLength: 3 }), "abc\r", "\nabcd")
    assert.deepStrictEqual(outcome.frames, ["abc"])
    assert.strictEqual(outcome.fault?.reason, "size")
  })

  it("a delimiter split across chunks is found", () => {
    assert.deepStrictEqual(frames(Framing.delimiter("<>"), "a<", ">b<", "x<>").frames, ["a", "b<x"])
  })

  it("length fields: Netty's examples", () => {
    // lengthFieldLength 2, strip 0: the header stays.
    assert.deepStrictEqual(
      frames(Framing.lengthField({ lengthFieldLength: 2 }), Uint8Array.of(0, 3, 65, 66, 67)).frames,
      ["\0\x03ABC"]
    )
    // Header length included in the field: adjustment -2, header stripped.
    assert.deepStrictEqual(
      frames(
        Framing.lengthField({ lengthFieldLength: 2, lengthAdjustment: -2, initialBytesToStrip: 2 }),
        Uint8Array.of(0, 5, 65, 66, 67)
      ).frames,
      ["ABC"]
    )
    // A little-endian field at offset 2, after a 2-byte header; the whole 6-byte header stripped.
    assert.deepStrictEqual(
      frames(
        Framing.lengthField({ lengthFieldLength: 4, byteOrder: "LE", lengthFieldOffset: 2, initialBytesToStrip: 6 }),
        Uint8Array.of(9, 9, 2, 0, 0, 0, 72, 73)
      ).frames,
      ["HI"]
    )
    // An 8-byte field at 2^53 - 1 is a length (too large here), one past it is bad input.
    const max = frames(
      Framing.lengthField({ lengthFieldLength: 8 }),
      Uint8Array.of(0, 0x1f, 255, 255, 255, 255, 255, 255)
    )
    assert.strictEqual(max.fault?.reason, "size")
    const over = frames(Framing.lengthField({ lengthFieldLength: 8 }), Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 0))
    assert.strictEqual(over.fault?.reason, "framing")
  })

  it("a custom decoder's FrameError marked tooLarge counts as size, any other throw as framing", () => {
    const throwing = (error: unknown) =>
      Framing.custom("t", () => ({
        decode: () => {
          throw error
        }
      }))
    assert.strictEqual(
      frames(throwing(new Framing.FrameError({ message: "big", tooLarge: true })), "x").fault?.reason,
      "size"
    )
    assert.strictEqual(frames(throwing(new Framing.FrameError({ message: "odd" })), "x").fault?.reason, "framing")
    assert.match(frames(throwing("just a string"), "x").fault?.detail ?? "", /decoder t threw: just a string/)
  })

  it("frames stay intact after later chunks arrive (the buffer is never reused)", () => {
    const framer = Framer.make(Framing.lines() as Framing.Lines, 1 << 20)
    const kept: Array<Uint8Array> = []
    for (const chunk of ["ab", "c\nde", "f\ngh", "i\n"]) kept.push(...framer.push(new TextEncoder().encode(chunk)))
    assert.deepStrictEqual(
      kept.map((frame) => new TextDecoder().decode(frame)),
      ["abc", "def", "ghi"]
    )
  })
})
