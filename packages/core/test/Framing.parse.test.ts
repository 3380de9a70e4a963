import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { Framing } from "../src/index.ts"

// The spec syntax of --framing and the config file, its error messages, and
// the validation that ManagerConfig applies to a framing given in code.

const parsed = (spec: string): Framing.Framing => {
  const result = Framing.parse(spec)
  if (Result.isFailure(result)) throw new Error(`${JSON.stringify(spec)} was rejected: ${result.failure}`)
  return result.success
}

const failure = (spec: string): string => {
  const result = Framing.parse(spec)
  if (Result.isSuccess(result))
    throw new Error(`${JSON.stringify(spec)} was accepted as ${Framing.format(result.success)}`)
  return result.failure
}

// The general help, as an unknown kind gets it.
const help = failure("nonsense")

const lengthWith = (overrides: Record<string, unknown>): Framing.Framing =>
  ({ ...(Framing.lengthField({ lengthFieldLength: 2 }) as Framing.LengthField), ...overrides }) as Framing.Framing

describe("Framing.parse: kinds and general syntax", () => {
  it("the general help names every spec and the delimiter escapes", () => {
    for (const part of ['"go"', '"lines[:MAX][:keep]"', '"delimiter:BYTES[:MAX][:keep]"', "\\xHH", '"length:1|2|4|8'])
      assert.include(help, part)
  })

  it("spaces around a spec are ignored and the kind is case-insensitive", () => {
    assert.deepStrictEqual(parsed("  lines:5  "), Framing.lines({ maxLength: 5 }))
    assert.deepStrictEqual(parsed("\tgo\n"), Framing.goRule)
    assert.deepStrictEqual(parsed("GO"), Framing.goRule)
    assert.deepStrictEqual(parsed("Length:2"), Framing.lengthField({ lengthFieldLength: 2 }))
  })

  it("go takes no parameters", () => {
    assert.strictEqual(failure("go:1"), help)
    assert.strictEqual(failure("go:"), help)
  })

  it("custom cannot be given by a spec, and the message says where it is given", () => {
    assert.match(failure("custom:resp"), /given in code \(Framing\.custom\)/)
    assert.match(failure("custom"), /given in code/)
    assert.notStrictEqual(failure("custom:resp"), help)
  })
})

describe("Framing.parse: lines and delimiter", () => {
  it("MAX is a plain decimal number of at least 1, or infinity", () => {
    assert.deepStrictEqual(parsed("lines:1"), Framing.lines({ maxLength: 1 }))
    assert.deepStrictEqual(parsed("lines:infinity"), Framing.lines())
    assert.deepStrictEqual(parsed("lines:Infinity:keep"), Framing.lines({ stripDelimiter: false }))
    assert.deepStrictEqual(parsed("delimiter:;:infinity"), Framing.delimiter(";"))
    // Number() would read these; the spec does not.
    for (const spec of ["lines:1e3", "lines:0x10", "lines:+5", "lines:-5", "lines:5x", "lines:x5", "lines:"])
      assert.strictEqual(failure(spec), help, spec)
    assert.strictEqual(failure("lines:0"), "expected lines' maxLength to be a whole number >= 1 or Infinity")
    assert.strictEqual(failure("delimiter:;:0"), "expected delimiter's maxLength to be a whole number >= 1 or Infinity")
  })

  it("keep is the last part, alone or after MAX; anything else is rejected", () => {
    assert.deepStrictEqual(parsed("lines:7:keep"), Framing.lines({ maxLength: 7, stripDelimiter: false }))
    assert.deepStrictEqual(parsed("delimiter:;:keep"), Framing.delimiter(";", { stripDelimiter: false }))
    for (const spec of [
      "lines:5:bogus",
      "lines:5:keep:x",
      "lines:keep:5",
      "lines:keep:keep",
      "lines:5:5",
      "delimiter:;:bogus",
      "delimiter:;:5:keep:x",
      "delimiter:;:keep:5"
    ])
      assert.strictEqual(failure(spec), help, spec)
  })

  it("delimiter bytes: printable text as UTF-8, and the escapes \\r \\n \\t \\0 \\\\ \\xHH", () => {
    const bytes = (spec: string) => Array.from((parsed(spec) as Framing.Delimiter).delimiter)
    assert.deepStrictEqual(bytes("delimiter:END"), [69, 78, 68])
    assert.deepStrictEqual(bytes("delimiter:\\r\\n\\t\\0\\\\"), [13, 10, 9, 0, 92])
    assert.deepStrictEqual(bytes("delimiter:\\x2c\\x3A\\xff\\x00"), [44, 58, 255, 0])
    assert.deepStrictEqual(bytes("delimiter:é"), [0xc3, 0xa9])
    assert.deepStrictEqual(bytes("delimiter:a\\x41b"), [97, 65, 98])
  })

  it("a bad escape, a missing delimiter or an empty one is rejected, with the help or what is wrong", () => {
    for (const spec of [
      "delimiter",
      "delimiter:\\q",
      "delimiter:a\\",
      "delimiter:\\x",
      "delimiter:\\x4",
      "delimiter:\\xzz",
      "delimiter:\\xg1",
      "delimiter:\\q:5"
    ])
      assert.strictEqual(failure(spec), help, spec)
    assert.strictEqual(failure("delimiter:"), "expected a delimiter of at least one byte")
    assert.strictEqual(failure("delimiter::5"), "expected a delimiter of at least one byte")
  })
})

describe("Framing.parse: length", () => {
  it("the field has 1, 2, 4 or 8 bytes; any other size says so", () => {
    for (const size of [1, 2, 4, 8] as const)
      assert.deepStrictEqual(parsed(`length:${size}`), Framing.lengthField({ lengthFieldLength: size }))
    for (const spec of ["length", "length:", "length:0", "length:3", "length:16", "length:x", "length:be"])
      assert.strictEqual(failure(spec), `${help}; the length field has 1, 2, 4 or 8 bytes`, spec)
  })

  it("the byte order is optional, be or le in any case; options may follow without it", () => {
    assert.deepStrictEqual(parsed("length:2:LE"), Framing.lengthField({ lengthFieldLength: 2, byteOrder: "LE" }))
    assert.deepStrictEqual(parsed("length:2:Be"), Framing.lengthField({ lengthFieldLength: 2 }))
    assert.deepStrictEqual(parsed("length:2:max=10"), Framing.lengthField({ lengthFieldLength: 2, maxFrameLength: 10 }))
    assert.deepStrictEqual(
      parsed("length:4:le:OFFSET=1,Strip=5"),
      Framing.lengthField({ lengthFieldLength: 4, byteOrder: "LE", lengthFieldOffset: 1, initialBytesToStrip: 5 })
    )
  })

  it("max may be infinity in any case", () => {
    for (const spec of ["length:2:max=infinity", "length:2:max=Infinity", "length:2:be:max=INFINITY"])
      assert.deepStrictEqual(parsed(spec), Framing.lengthField({ lengthFieldLength: 2 }), spec)
  })

  it("an option or byte order not understood is quoted in the message", () => {
    for (const [spec, pair] of [
      ["length:2:xle", "xle"],
      ["length:2:lex", "lex"],
      ["length:2:be:xmax=10", "xmax=10"],
      ["length:2:be:max=10x", "max=10x"],
      ["length:2:max=", "max="],
      ["length:2:max=10,speed=1", "speed=1"],
      ["length:2:max=1.5", "max=1.5"],
      ["length:2:offset=+1", "offset=+1"]
    ])
      assert.strictEqual(failure(spec!), `${help}; not understood: ${JSON.stringify(pair)}`, spec)
  })

  it("the options are the last part", () => {
    assert.strictEqual(failure("length:2:be:max=10:x"), help)
    assert.strictEqual(failure("length:2:max=10:be"), help)
  })

  it("options out of range get validate's message", () => {
    assert.strictEqual(failure("length:2:offset=-1"), "expected lengthFieldOffset to be a whole number >= 0")
    assert.strictEqual(failure("length:2:strip=-1"), "expected initialBytesToStrip to be a whole number >= 0")
    assert.strictEqual(failure("length:2:max=0"), "expected maxFrameLength to be a whole number >= 1 or Infinity")
    assert.match(failure("length:1:offset=2,max=2"), /leave room for the length field/)
    assert.deepStrictEqual(
      parsed("length:1:offset=2,max=3,adjust=-3"),
      Framing.lengthField({ lengthFieldLength: 1, lengthFieldOffset: 2, maxFrameLength: 3, lengthAdjustment: -3 })
    )
  })
})

describe("Framing.format", () => {
  const delimiterSpec = (bytes: Uint8Array | string) => Framing.format(Framing.delimiter(bytes))

  it("writes control bytes with their escapes", () => {
    assert.strictEqual(delimiterSpec("\r\n"), "delimiter:\\r\\n")
    assert.strictEqual(delimiterSpec("\t"), "delimiter:\\t")
    assert.strictEqual(delimiterSpec("\\"), "delimiter:\\\\")
  })

  it("writes printable ASCII as is, and space, DEL, the rest and the spec's separators as \\xHH", () => {
    assert.strictEqual(delimiterSpec("!~AZaz09;<>"), "delimiter:!~AZaz09;<>")
    assert.strictEqual(
      delimiterSpec(Uint8Array.of(0, 31, 32, 127, 128, 255)),
      "delimiter:\\x00\\x1f\\x20\\x7f\\x80\\xff"
    )
    assert.strictEqual(delimiterSpec(":,"), "delimiter:\\x3a\\x2c")
  })

  it("writes only the options that differ from the defaults", () => {
    assert.strictEqual(Framing.format(Framing.lengthField({ lengthFieldLength: 4 })), "length:4:be")
    assert.strictEqual(
      Framing.format(
        Framing.lengthField({
          lengthFieldLength: 2,
          byteOrder: "LE",
          lengthFieldOffset: 1,
          lengthAdjustment: -1,
          initialBytesToStrip: 3,
          maxFrameLength: 100
        })
      ),
      "length:2:le:offset=1,adjust=-1,strip=3,max=100"
    )
    assert.strictEqual(Framing.format(Framing.lines({ maxLength: 3, stripDelimiter: false })), "lines:3:keep")
    assert.strictEqual(Framing.format(Framing.delimiter(";", { stripDelimiter: false })), "delimiter:;:keep")
  })
})

describe("Framing.validate", () => {
  it("the Go rule and the defaults of every constructor are valid", () => {
    assert.isUndefined(Framing.validate(Framing.goRule))
    assert.isUndefined(Framing.validate(Framing.lines()))
    assert.isUndefined(Framing.validate(Framing.delimiter(";")))
    assert.isUndefined(Framing.validate(Framing.lengthField({ lengthFieldLength: 8 })))
    assert.isUndefined(Framing.validate(Framing.custom("c", () => ({ decode: () => ({ frames: [], consumed: 0 }) }))))
  })

  it("a maximum is a whole number >= 1 or Infinity", () => {
    assert.isUndefined(Framing.validate(Framing.lines({ maxLength: 1 })))
    assert.isUndefined(Framing.validate(Framing.delimiter(";", { maxLength: 1 })))
    for (const maxLength of [0, -1, 1.5, Number.NaN, -Infinity, 2 ** 53]) {
      assert.strictEqual(
        Framing.validate(Framing.lines({ maxLength })),
        "expected lines' maxLength to be a whole number >= 1 or Infinity"
      )
      assert.strictEqual(
        Framing.validate(Framing.delimiter(";", { maxLength })),
        "expected delimiter's maxLength to be a whole number >= 1 or Infinity"
      )
    }
  })

  it("a delimiter has at least one byte", () => {
    assert.strictEqual(Framing.validate(Framing.delimiter("")), "expected a delimiter of at least one byte")
    const notBytes = { ...(Framing.delimiter(";") as Framing.Delimiter), delimiter: [59] } as unknown as Framing.Framing
    assert.strictEqual(Framing.validate(notBytes), "expected a delimiter of at least one byte")
  })

  it("each length field parameter out of range is named", () => {
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ lengthFieldLength: 3 }, "expected lengthFieldLength 1, 2, 4 or 8"],
      [{ byteOrder: "be" }, 'expected byteOrder "BE" or "LE"'],
      [{ lengthFieldOffset: -1 }, "expected lengthFieldOffset to be a whole number >= 0"],
      [{ lengthFieldOffset: 0.5 }, "expected lengthFieldOffset to be a whole number >= 0"],
      [{ lengthAdjustment: 0.5 }, "expected lengthAdjustment to be a whole number"],
      [{ lengthAdjustment: Infinity }, "expected lengthAdjustment to be a whole number"],
      [{ initialBytesToStrip: -1 }, "expected initialBytesToStrip to be a whole number >= 0"],
      [{ initialBytesToStrip: 2.5 }, "expected initialBytesToStrip to be a whole number >= 0"],
      [{ maxFrameLength: 0 }, "expected maxFrameLength to be a whole number >= 1 or Infinity"],
      [
        { lengthFieldOffset: 2, lengthFieldLength: 1, maxFrameLength: 2 },
        "expected maxFrameLength to leave room for the length field (lengthFieldOffset + lengthFieldLength)"
      ]
    ]
    for (const [overrides, message] of cases)
      assert.strictEqual(Framing.validate(lengthWith(overrides)), message, JSON.stringify(overrides))
  })

  it("a maxFrameLength of exactly the header is valid, and any adjustment or offset >= 0 is", () => {
    assert.isUndefined(Framing.validate(lengthWith({ lengthFieldOffset: 2, lengthFieldLength: 1, maxFrameLength: 3 })))
    assert.isUndefined(Framing.validate(lengthWith({ lengthAdjustment: -5, lengthFieldOffset: 1 })))
  })

  it("a custom framing's make is a function", () => {
    const bad = { _tag: "Custom", name: "c", make: 3 } as unknown as Framing.Framing
    assert.strictEqual(Framing.validate(bad), "expected a custom framing's make to be a function")
  })
})

describe("Framing.isFraming and FrameError", () => {
  it("isFraming is true for every constructor's result and false for anything else", () => {
    const custom = Framing.custom("c", () => ({ decode: () => ({ frames: [], consumed: 0 }) }))
    for (const framing of [
      Framing.goRule,
      Framing.lines(),
      Framing.delimiter(";"),
      Framing.lengthField({ lengthFieldLength: 1 }),
      custom
    ])
      assert.strictEqual(Framing.isFraming(framing), true, framing._tag)
    const tagged = Object.assign(() => {}, { _tag: "Lines" })
    for (const value of [undefined, null, 0, "Lines", {}, { _tag: "lines" }, { _tag: "Nope" }, tagged])
      assert.strictEqual(Framing.isFraming(value), false, String(value))
  })

  it.effect("FrameError is an Error tagged FrameError, caught by its tag", () =>
    Effect.gen(function* () {
      const error = new Framing.FrameError({ message: "bad header", tooLarge: true })
      assert.instanceOf(error, Error)
      assert.strictEqual(error._tag, "FrameError")
      assert.strictEqual(error.message, "bad header")
      const caught = yield* Effect.fail(error).pipe(
        Effect.catchTag("FrameError", (e) => Effect.succeed(`caught ${e.message}`))
      )
      assert.strictEqual(caught, "caught bad header")
    })
  )
})
