/**
 * The two lines of the stop (internal/cliServe.ts), from `NodeCli.serve` in
 * the test process: `stopping` with the drain's bound and the signal that
 * began it (`none` without one; NodeCli.stopSignal has one), and `stopped`
 * with the connections drained and cut at the drain timeout, each with its
 * fields; a server that never listened logs neither; and under an OTLP
 * exporter the exporters are flushed once, after the drain, and the stop
 * stays clean. NodeCli.serve.test.ts runs the command.
 */

import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { OtlpExporter } from "effect/observability"
import { NodeCli } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { answerOk, lineWith, messages, serverConfig, startServe } from "./utils/serve.ts"
import { within } from "./utils/within.ts"

/** The pool's port, from the listening line. */
const portOf = (lines: ReadonlyArray<LogLine>) =>
  Number(/127\.0\.0\.1:(\d+)/.exec(lineWith(lines, " listening on ")?.message ?? "")?.[1])

/** Answers `OK`, except that a message starting with `SLOW` is never answered. */
const slowOnSlow = (conn: Parameters<typeof answerOk>[0], body: Uint8Array) =>
  new TextDecoder().decode(body).startsWith("SLOW") ? Effect.never : answerOk(conn)

describe("NodeCli stop lines", { timeout: 10_000 }, () => {
  it.live("without a signal: stopping says none, with the drain's bound and no lame duck; stopped follows", () =>
    Effect.gen(function* () {
      const served = yield* startServe({ manager: { drainTimeout: "5 seconds" } }, { name: "tested" })
      yield* served.stop
      const stopping = lineWith(served.lines, "tested stopping")
      assert.strictEqual(stopping?.message, "tested stopping: draining 0 connections for up to 5s")
      assert.deepStrictEqual(stopping?.annotations, {
        signal: "none",
        drainTimeout: "5s",
        shutdownDelay: "0",
        connections: 0
      })
      const stopped = lineWith(served.lines, "tested stopped")
      assert.match(stopped?.message ?? "", /^tested stopped: 0 connections drained in \d+ms$/)
      assert.strictEqual(stopped?.annotations.drained, 0)
      assert.strictEqual(stopped?.annotations.cut, 0)
      const millis = stopped?.annotations.stopMillis
      assert.isTrue(typeof millis === "number" && millis >= 0 && millis < 2000, `stopMillis ${String(millis)}`)
      assert.isAbove(
        messages(served.lines).indexOf(stopped!.message),
        messages(served.lines).indexOf(stopping!.message)
      )
    })
  )

  it.live("a connection that outlasts the drain timeout is counted as cut, not drained", () =>
    Effect.gen(function* () {
      const served = yield* startServe({ manager: { drainTimeout: "200 millis" } }, { name: "tested" }, slowOnSlow)
      const port = portOf(served.lines)
      const quick = yield* connect(port)
      yield* quick.send("HI!")
      assert.strictEqual(yield* quick.receive(2), "OK")
      const slow = yield* connect(port)
      yield* slow.send("SLOW")
      yield* Effect.sleep("100 millis")
      yield* within(served.stop, "3 seconds", "the stop past the drain timeout")
      assert.strictEqual(
        lineWith(served.lines, "tested stopping")?.message,
        "tested stopping: draining 2 connections for up to 200ms"
      )
      const stopped = lineWith(served.lines, "tested stopped")
      assert.match(
        stopped?.message ?? "",
        /^tested stopped: 1 connections drained, 1 cut at the drain timeout in \d+ms$/
      )
      assert.strictEqual(stopped?.annotations.drained, 1)
      assert.strictEqual(stopped?.annotations.cut, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a server that could not listen logs neither line and fails with its listen error", () =>
    Effect.gen(function* () {
      const first = yield* startServe({}, { name: "first" })
      const port = portOf(first.lines)
      const config = yield* serverConfig({ server: { host: "127.0.0.1", port } })
      const lines: Array<LogLine> = []
      const exit = yield* within(
        Effect.exit(NodeCli.serve(config, answerOk, { name: "second" }).pipe(Effect.provide(capturingLogs(lines)))),
        "2 seconds",
        "the failed listen"
      )
      yield* first.stop
      assert.isTrue(Exit.isFailure(exit) && Exit.findErrorOption(exit)._tag === "Some", String(exit))
      assert.deepStrictEqual(messages(lines), [])
    })
  )

  it.live("under an OTLP exporter, the exporters are flushed once, after the stopping line and before stopped", () =>
    Effect.gen(function* () {
      const flushedAfter: Array<ReadonlyArray<string>> = []
      let lines: ReadonlyArray<LogLine> = []
      const flusher = Layer.succeed(OtlpExporter.Flusher, {
        // A flush takes time (it posts what the exporters hold).
        flush: Effect.sleep("20 millis").pipe(
          Effect.andThen(Effect.sync(() => void flushedAfter.push(messages(lines))))
        ),
        register: () => Effect.void
      })
      const served = yield* startServe({}, { name: "tested" }).pipe(Effect.provide(flusher))
      lines = served.lines
      assert.deepStrictEqual(flushedAfter, [])
      yield* served.stop
      assert.strictEqual(flushedAfter.length, 1, "flushed once")
      assert.isDefined(flushedAfter[0]?.find((line) => line.startsWith("tested stopping")))
      assert.isUndefined(flushedAfter[0]?.find((line) => line.startsWith("tested stopped")))
      assert.isDefined(lineWith(served.lines, "tested stopped"))
    })
  )
})
