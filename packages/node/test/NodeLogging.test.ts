import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, type LogLevel, References } from "effect"
import { TestConsole } from "effect/testing"
import { NodeLogging } from "../src/index.ts"

const json = NodeLogging.provide({ format: "json", floor: "Info", minimumLevel: () => "Info" })

const lines = Effect.map(TestConsole.logLines, (logged) =>
  logged.map((line) => JSON.parse(String(line)) as Record<string, unknown>)
)

describe("NodeLogging", () => {
  it.effect("a JSON line written inside a span carries the span's traceId and spanId", () =>
    Effect.gen(function* () {
      yield* Effect.log("outside")
      const [outer, inner] = yield* Effect.gen(function* () {
        const outer = yield* Effect.currentSpan
        yield* Effect.log("in the request")
        const inner = yield* Effect.log("in the query").pipe(
          Effect.andThen(Effect.currentSpan),
          Effect.withSpan("query")
        )
        return [outer, inner] as const
      }).pipe(Effect.withSpan("request"))
      const [outside, request, query] = yield* lines
      assert.strictEqual(outside!.message, "outside")
      assert.notProperty(outside, "traceId")
      assert.notProperty(outside, "spanId")
      assert.include(request, { message: "in the request", traceId: outer.traceId, spanId: outer.spanId })
      assert.include(query, { message: "in the query", traceId: outer.traceId, spanId: inner.spanId })
      assert.notStrictEqual(inner.spanId, outer.spanId)
    }).pipe(json, Effect.provide(TestConsole.layer))
  )

  it.effect("with tracing disabled, lines carry no ids", () =>
    Effect.gen(function* () {
      yield* Effect.log("in a span").pipe(Effect.withSpan("request"))
      const [line] = yield* lines
      assert.strictEqual(line!.message, "in a span")
      assert.notProperty(line, "traceId")
    }).pipe(json, Effect.provideService(References.TracerEnabled, false), Effect.provide(TestConsole.layer))
  )

  it.effect("writes text by default, and only the lines at or above the minimum read when each is written", () =>
    Effect.gen(function* () {
      assert.strictEqual(NodeLogging.logger(), Logger.defaultLogger)
      assert.strictEqual(NodeLogging.logger("text"), Logger.defaultLogger)
      assert.strictEqual(NodeLogging.logger("json"), NodeLogging.jsonLogger)
      let minimum: LogLevel.LogLevel = "Info"
      yield* Effect.gen(function* () {
        yield* Effect.logDebug("dropped")
        yield* Effect.logInfo("kept")
        minimum = "Debug"
        yield* Effect.logDebug("now kept")
        minimum = "Warn"
        yield* Effect.logInfo("dropped again")
        yield* Effect.logError("always kept")
      }).pipe(NodeLogging.provide({ format: "json", floor: "Debug", minimumLevel: () => minimum }))
      assert.deepStrictEqual(
        (yield* lines).map((line) => line.message),
        ["kept", "now kept", "always kept"]
      )
    }).pipe(Effect.provide(TestConsole.layer))
  )
})
