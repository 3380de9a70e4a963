/**
 * How a listener's accept errors are counted and logged, in this process: the
 * listener's `error` events by code (unknown codes as `other`), and the
 * connections Node drops at the `maxConnections` set short of the descriptor
 * limit, counted as `EMFILE`; one warning each (rate-limited) that names the
 * limit hit. The real descriptor exhaustion is in e2e/reliability.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Logger, Metric, Scope } from "effect"
import * as AcceptErrors from "../src/internal/acceptErrors.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"

const errorOf = (code: string | undefined, message = "accept failed") =>
  Object.assign(new Error(message), code === undefined ? {} : { code })

const softLimit = () => Number(/^Max open files\s+(\d+)/m.exec(Fs.readFileSync("/proc/self/limits", "utf8"))![1])

describe("NodeTcpServer accept errors", () => {
  it.live("counts each error by its code, unknown ones as other, and warns naming what ran out", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const listener = Net.createServer()
      const counts = yield* AcceptErrors.watch(listener, "127.0.0.1:6263")
      listener.emit("error", errorOf("ENOBUFS"))
      listener.emit("error", errorOf("EMFILE"))
      listener.emit("error", errorOf("EWHAT"))
      listener.emit("error", errorOf(undefined, "something odd"))
      assert.deepStrictEqual(counts(), { EMFILE: 1, ENFILE: 0, ENOBUFS: 1, ENOMEM: 0, other: 2 })
      yield* Effect.sleep("20 millis")
      const messages = lines.map((line) => line.message)
      assert.strictEqual(messages[0], "accepting on 127.0.0.1:6263: ENOBUFS (the kernel is out of socket buffers)")
      assert.match(
        messages[1]!,
        /^accepting on 127\.0\.0\.1:6263: EMFILE \(this process is out of file descriptors\): \d+ descriptors open, limit \d+ \(ulimit -n; LimitNOFILE= in a systemd unit\); the connection was closed$/
      )
      assert.strictEqual(messages[2], "accepting on 127.0.0.1:6263: EWHAT (accept failed)")
      assert.strictEqual(messages[3], "accepting on 127.0.0.1:6263: something odd (accept failed)")
      assert.strictEqual(lines[1]!.annotations.code, "EMFILE")
      assert.strictEqual(lines[1]!.annotations.maxOpenFiles, softLimit())
      assert.isAbove(lines[1]!.annotations.openFiles as number, 0)
      const metric = (yield* Metric.snapshot).find(
        (snapshot) => snapshot.id === "pool_accept_errors_total" && snapshot.attributes?.code === "other"
      )
      assert.strictEqual(metric?.description, "Errors accepting a connection (the connection is lost), by error code")
      assert.deepInclude(metric?.state, { count: 2 })
    }).pipe(Effect.provide(capturingLogs(lines)), Effect.provideService(Metric.MetricRegistry, new Map()))
  })

  it.live(
    "stops short of the descriptor limit, and counts what Node drops there as EMFILE, until its scope ends",
    () => {
      const lines: Array<LogLine> = []
      return Effect.gen(function* () {
        const limit = softLimit()
        const listener = Net.createServer()
        const open = Fs.readdirSync("/proc/self/fd").length
        const scope = yield* Scope.make()
        const counts = yield* Scope.provide(AcceptErrors.watch(listener, "here"), scope)
        // Within a few descriptors of: the limit, less those open, less the reserve.
        const expected = limit - open - AcceptErrors.reserve(limit)
        assert.isAtMost(Math.abs(listener.maxConnections - expected), 4)
        listener.emit("drop", {})
        listener.emit("error", errorOf("ENFILE"))
        assert.deepInclude(counts(), { EMFILE: 1, ENFILE: 1 })
        yield* Effect.sleep("20 millis")
        assert.match(
          lines[0]!.message,
          /^accepting on here: EMFILE near the descriptor limit \(this process is out of file descriptors\): \d+ descriptors open, limit \d+ /
        )
        assert.match(
          lines[1]!.message,
          /^accepting on here: ENFILE \(the system is out of file descriptors\): \d+ descriptors open/
        )
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(listener.listenerCount("drop"), 0)
      }).pipe(Effect.provide(capturingLogs(lines)), Effect.provideService(Metric.MetricRegistry, new Map()))
    }
  )

  it.live("logs a burst of errors a few at a time, then says how many more it did not", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const listener = Net.createServer()
      const scope = yield* Scope.make()
      const counts = yield* Scope.provide(AcceptErrors.watch(listener, "here"), scope)
      for (let i = 0; i < 8; i++) listener.emit("error", errorOf("ENOMEM"))
      assert.strictEqual(counts().ENOMEM, 8)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sleep("20 millis")
      assert.strictEqual(lines.filter((line) => line.message.includes("ENOMEM")).length, 5)
      assert.include(
        lines.map((line) => line.message),
        "accept errors: 3 more like this not logged in the last 10s (the metrics count every one)"
      )
    }).pipe(Effect.provide(capturingLogs(lines)), Effect.provideService(Metric.MetricRegistry, new Map()))
  })

  it.live("keeps a maxConnections of the user's own; its scope's end removes its listeners", () =>
    Effect.gen(function* () {
      const listener = Net.createServer()
      listener.maxConnections = 100
      const scope = yield* Scope.make()
      const counts = yield* Scope.provide(AcceptErrors.watch(listener, "here"), scope)
      assert.strictEqual(listener.maxConnections, 100)
      assert.strictEqual(listener.listenerCount("drop"), 0)
      assert.strictEqual(listener.listenerCount("error"), 1)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(listener.listenerCount("error"), 0)
      assert.strictEqual(counts().EMFILE, 0)
    }).pipe(Effect.provide(Logger.layer([])), Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it("keeps a reserve of 2% of the limit, at least 16 descriptors", () => {
    assert.strictEqual(AcceptErrors.reserve(100), 16)
    assert.strictEqual(AcceptErrors.reserve(800), 16)
    assert.strictEqual(AcceptErrors.reserve(1024), 21)
    assert.strictEqual(AcceptErrors.reserve(65_536), 1311)
  })
})
