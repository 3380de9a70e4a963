/**
 * The stopping line of `NodeCli.serve` (internal/cliServe.ts) when a stop
 * signal began the stop: it names the signal, as text and as a field.
 *
 * A file of its own because the signal is remembered for the module's life
 * (internal/signals.ts): vitest gives each test file its own copy of the
 * modules, so the SIGTERM this test delivers stays here. (A fresh import
 * inside a test would do the same, but it runs every module's top level
 * within that test, which makes a mutation run count those static mutants as
 * covered by it.)
 */

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { NodeCli } from "../src/index.ts"
import * as Signals from "../src/internal/signals.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { answerOk, lineWith, serverConfig } from "./utils/serve.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

describe("NodeCli stop signal", { timeout: 10_000 }, () => {
  it.live("on a stop signal: stopping names it, as text and as a field", () =>
    Effect.gen(function* () {
      const lines: Array<LogLine> = []
      const config = yield* serverConfig({ manager: { drainTimeout: "1 second" } })
      const fiber = yield* Effect.forkChild(
        NodeCli.serve(config, answerOk, { name: "tested" }).pipe(Effect.provide(capturingLogs(lines)))
      )
      yield* until(() => lineWith(lines, " listening on ") !== undefined, "the listening line")
      // SIGTERM as the process would get it: through the listener the signals module installs.
      const before = process.listeners("SIGTERM")
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* Signals.on("SIGTERM", () => {})
          installedListener("SIGTERM", before)()
        })
      )
      assert.strictEqual(Signals.stopSignal()?.signal, "SIGTERM")
      yield* Fiber.interrupt(fiber)
      const stopping = lineWith(lines, "tested stopping")
      assert.strictEqual(stopping?.message, "tested stopping on SIGTERM: draining 0 connections for up to 1s")
      assert.strictEqual(stopping?.annotations.signal, "SIGTERM")
    })
  )
})
