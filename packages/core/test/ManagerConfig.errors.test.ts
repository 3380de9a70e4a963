/**
 * What a rejected configuration tells its user: each `ConfigError` issue names
 * the field, shows the value as it was written, and says what the field takes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Result } from "effect"
import { Framing, ManagerConfig, type PoolError } from "../src/index.ts"

/** The issues of the `ConfigError` that `input` is rejected with. */
const issues = (input: unknown) =>
  Effect.flip(ManagerConfig.make(input as ManagerConfig.Input)).pipe(Effect.map((error) => error.issues))

/** The single issue `input` is rejected with, as `value: message` of `field`. */
const only = (input: unknown, field: string) =>
  Effect.gen(function* () {
    const found = yield* issues(input)
    assert.strictEqual(found.length, 1, `one issue expected, got ${JSON.stringify(found)}`)
    assert.strictEqual(found[0]!.field, field)
    return { value: found[0]!.value, message: found[0]!.message }
  })

describe("ManagerConfig errors", () => {
  it.effect("counts and sizes say which rule the value breaks", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* only({ bufferSize: 1.5 }, "bufferSize"), {
        value: "1.5",
        message: "expected a whole number"
      })
      assert.deepStrictEqual(yield* only({ minWorkersCount: -1 }, "minWorkersCount"), {
        value: "-1",
        message: "expected a number >= 0"
      })
      assert.deepStrictEqual(yield* only({ maxMessageBytes: 0 }, "maxMessageBytes"), {
        value: "0",
        message: "expected a number >= 1"
      })
    })
  )

  it.effect("a value breaking several rules of a field is reported once, with the first rule", () =>
    Effect.gen(function* () {
      // -1.5 is neither whole nor >= 0.
      assert.deepStrictEqual(yield* issues({ bufferSize: -1.5 }), [
        { field: "bufferSize", value: "-1.5", message: "expected a whole number" }
      ])
      assert.deepStrictEqual(yield* issues({ queueSize: -0.5, minWorkersCount: 1.5 }), [
        { field: "minWorkersCount", value: "1.5", message: "expected a whole number" },
        { field: "queueSize", value: "-0.5", message: "expected a whole number" }
      ])
    })
  )

  it.effect("durations: a negative one, a NaN and an unreadable text each get their own explanation", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* only({ drainTimeout: -5 }, "drainTimeout"), {
        value: "-5",
        message: "expected a duration >= 0"
      })
      assert.deepStrictEqual(yield* only({ queueTimeout: "-1 second" }, "queueTimeout"), {
        value: '"-1 second"',
        message: "expected a duration >= 0"
      })
      // Number(process.env.X) of an unset variable: a NaN must not read as "no drain at all".
      assert.deepStrictEqual(yield* only({ drainTimeout: Number.NaN }, "drainTimeout"), {
        value: "NaN",
        message: "expected a number of milliseconds, not NaN"
      })
      assert.deepStrictEqual(yield* only({ clientsDeadline: "soon" }, "clientsDeadline"), {
        value: '"soon"',
        message: "Expected a valid Duration string"
      })
    })
  )

  it.effect("a value of a type no Duration input has is rejected, not taken as left out", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* only({ clientsDeadline: true }, "clientsDeadline"), {
        value: "true",
        message: "Expected Duration"
      })
      assert.strictEqual((yield* only({ idleWorkerTimeout: [1] }, "idleWorkerTimeout")).value, "[1]")
    })
  )

  it.effect("the message of an optional field says what the value may be, without '| undefined'", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* only({ debug: "yes" }, "debug"), { value: '"yes"', message: "Expected boolean" })
      assert.deepStrictEqual(yield* only({ bufferSize: "big" }, "bufferSize"), {
        value: '"big"',
        message: "Expected number"
      })
      assert.deepStrictEqual(yield* only({ admissionPolicy: "wait" }, "admissionPolicy"), {
        value: '"wait"',
        message: 'Expected "reject" | "queue"'
      })
    })
  )

  it.effect("values are shown as they were written", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* only({ drainTimeout: Duration.millis(-5) }, "drainTimeout")).value, "-5ms")
      assert.strictEqual((yield* only({ bufferSize: 5n }, "bufferSize")).value, "5n")
      assert.strictEqual((yield* only({ debug: { on: true } }, "debug")).value, '{"on":true}')
      assert.strictEqual((yield* only({ debug: [1, 2] }, "debug")).value, "[1,2]")
      assert.strictEqual((yield* only({ debug: null }, "debug")).value, "null")
      // What JSON cannot write is still shown.
      assert.strictEqual((yield* only({ debug: Symbol("on") }, "debug")).value, "Symbol(on)")
      const circular: Record<string, unknown> = {}
      circular.self = circular
      assert.strictEqual((yield* only({ debug: circular }, "debug")).value, "[object Object]")
    })
  )

  it.effect("a misspelt field is rejected even when its value is undefined", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* only({ maxWorkerCount: undefined }, "maxWorkerCount"), {
        value: "undefined",
        message: "Expected no excess property"
      })
    })
  )

  it.effect("framing: a bad spec gets the spec syntax, a bad value what framing takes", () =>
    Effect.gen(function* () {
      const spec = yield* only({ framing: "lines:zero" }, "framing")
      assert.strictEqual(spec.value, '"lines:zero"')
      const parsed = Framing.parse("lines:zero")
      assert.isTrue(Result.isFailure(parsed))
      if (Result.isFailure(parsed)) assert.strictEqual(spec.message, parsed.failure)
      assert.include(spec.message, "lines[:MAX][:keep]")
      for (const value of [42, true, { _tag: "Lines2" }]) {
        assert.strictEqual(
          (yield* only({ framing: value }, "framing")).message,
          'expected a Framing or a framing spec such as "lines"',
          `framing = ${String(value)}`
        )
      }
    })
  )

  it.effect("framing: a Framing with bad parameters is shown as its spec, with what is wrong", () =>
    Effect.gen(function* () {
      const framing = Framing.lines({ maxLength: 0 })
      assert.deepStrictEqual(yield* only({ framing }, "framing"), {
        value: "lines:0",
        message: Framing.validate(framing)!
      })
      assert.include(Framing.validate(framing)!, "maxLength")
    })
  )

  it.effect("the error's message lists every issue, and can be caught by its tag", () =>
    Effect.gen(function* () {
      const message = yield* ManagerConfig.make({ minWorkersCount: -1, bufferSize: 1.5 }).pipe(
        Effect.as("accepted"),
        Effect.catchTag("ConfigError", (error: PoolError.ConfigError) => Effect.succeed(error.message))
      )
      assert.strictEqual(
        message,
        "Invalid pool manager config: bufferSize = 1.5: expected a whole number; minWorkersCount = -1: expected a number >= 0"
      )
    })
  )
})
