/**
 * The limiter of repeated warnings (internal/logRateLimit.ts) the listener
 * uses for accept errors, TLS handshake failures and PROXY protocol
 * rejections: a burst per window is logged, the rest counted, and one summary
 * line says how many were left out — at the window's end, or when the scope
 * closes, never twice; a window lasts exactly its length; and the pending
 * summary does not keep the process alive. Real time, windows of a few
 * hundred milliseconds (the clock held still where the edge is tested).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { vi } from "vitest"
import * as LogRateLimit from "../src/internal/logRateLimit.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { referencedTimers } from "./utils/resources.ts"
import { until } from "./utils/socketPair.ts"

const summary = (count: number) =>
  `failures: ${count} more like this not logged in the last 300ms (the metrics count every one)`

describe("NodeLogging rate limit", () => {
  it.live("logs a burst per window, then one summary of the rest at the window's end", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const warn = yield* LogRateLimit.make({ kind: "failures", burst: 2, window: "300 millis" })
      for (let i = 1; i <= 5; i++) warn(Effect.logWarning(`failure ${i}`))
      yield* until(() => lines.length === 2, "the burst")
      assert.deepStrictEqual(
        lines.map((line) => line.message),
        ["failure 1", "failure 2"]
      )
      yield* until(() => lines.length === 3, "the summary", "2 seconds")
      assert.deepStrictEqual(lines[2], { level: "Warn", message: summary(3), annotations: { suppressed: 3 } })
      // A new window: a new burst.
      warn(Effect.logWarning("failure 6"))
      warn(Effect.logWarning("failure 7"))
      yield* until(() => lines.length === 5, "the next window's burst")
      yield* Effect.sleep("400 millis")
      assert.strictEqual(lines.length, 5, "nothing left out, no summary")
    }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)))
  })

  it.live("a window lasts exactly its length: a line that long after the window opened opens the next", () => {
    const lines: Array<LogLine> = []
    let now = 1_000_000
    const clock = vi.spyOn(Date, "now").mockImplementation(() => now)
    return Effect.gen(function* () {
      const warn = yield* LogRateLimit.make({ kind: "failures", burst: 1, window: "300 millis" })
      warn(Effect.logWarning("first"))
      now += 299
      warn(Effect.logWarning("left out"))
      now += 1
      warn(Effect.logWarning("the next window's first"))
      yield* until(() => lines.length === 3, "both windows' lines and the summary")
      assert.deepStrictEqual(
        lines.map((line) => line.message).sort(),
        [
          "failures: 1 more like this not logged in the last 300ms (the metrics count every one)",
          "first",
          "the next window's first"
        ].sort()
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(capturingLogs(lines)),
      Effect.ensuring(Effect.sync(() => clock.mockRestore()))
    )
  })

  it.live("the pending summary's timer does not keep the process alive", () => {
    const lines: Array<LogLine> = []
    // What keeps Node's event loop running: a timer counts only while it is referenced.
    return Effect.gen(function* () {
      const warn = yield* LogRateLimit.make({ kind: "failures", burst: 1, window: "10 seconds" })
      const before = referencedTimers()
      warn(Effect.logWarning("first"))
      warn(Effect.logWarning("left out"))
      assert.strictEqual(referencedTimers(), before)
    }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)))
  })

  it.live("writes the pending summary when the scope closes, and not again at the window's end", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const scope = yield* Scope.make()
      const warn = yield* Scope.provide(LogRateLimit.make({ kind: "failures", burst: 1, window: "300 millis" }), scope)
      warn(Effect.logWarning("first"))
      warn(Effect.logWarning("second"))
      warn(Effect.logWarning("third"))
      yield* Scope.close(scope, Exit.void)
      yield* until(() => lines.length === 2, "the first line and the summary")
      assert.deepStrictEqual(
        lines.map((line) => line.message),
        ["first", summary(2)]
      )
      yield* Effect.sleep("450 millis")
      assert.strictEqual(lines.length, 2, "the timer was cleared")

      // Nothing left out: no summary at the close either.
      const quiet = yield* Scope.make()
      const once = yield* Scope.provide(LogRateLimit.make({ kind: "failures" }), quiet)
      once(Effect.logWarning("alone"))
      yield* Scope.close(quiet, Exit.void)
      yield* until(() => lines.length === 3, "the line")
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(lines.at(-1)?.message, "alone")
      assert.strictEqual(lines.length, 3)
    }).pipe(Effect.provide(capturingLogs(lines)))
  })
})
