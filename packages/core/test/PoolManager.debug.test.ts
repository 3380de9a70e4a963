import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, MemoryConnection, PoolError, PoolManager } from "../src/index.ts"
import { type LogLine, logging } from "./utils/logs.ts"
import { connect, echo, settle } from "./utils/manager.ts"

const startedWith = (config: ManagerConfig.Input, callback = echo([])) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, callback)
    yield* manager.start
    return manager
  })

/** The annotations of each line logged with `message`, in order. */
const entries = (logged: ReadonlyArray<LogLine>, message: string) =>
  logged.filter((entry) => entry.message === message).map((entry) => entry.annotations)

describe("PoolManager debug logging", () => {
  it.effect("logs the manager's events with what identifies them", () =>
    Effect.suspend(() => {
      const logged: Array<LogLine> = []
      return Effect.gen(function* () {
        const manager = yield* startedWith({
          debug: true,
          maxWorkersCount: 1,
          minWorkersCount: 1,
          clientsDeadline: "1 hour"
        })
        assert.deepStrictEqual(entries(logged, "worker spawned"), [{ worker: 1 }])
        const [startedLog] = entries(logged, "pool manager started")
        assert.deepInclude(startedLog, { debug: true, maxWorkersCount: 1, minWorkersCount: 1 })
        yield* connect(manager, { remoteAddress: "10.0.0.5:9" })
        assert.deepStrictEqual(entries(logged, "connection put"), [{ worker: 1, remoteAddress: "10.0.0.5:9" }])
        const refused = yield* Effect.flip(
          manager.put((yield* MemoryConnection.make({ remoteAddress: "10.0.0.6:9" })).connection)
        )
        assert.instanceOf(refused, PoolError.PoolBusyError)
        assert.deepStrictEqual(entries(logged, "connection refused"), [
          { remoteAddress: "10.0.0.6:9", reason: refused.message }
        ])
        yield* manager.setConfig({ maxWorkersCount: 3 })
        assert.deepInclude(entries(logged, "config changed")[0], { maxWorkersCount: 3, minWorkersCount: 1 })
        yield* manager.stop
        assert.deepStrictEqual(entries(logged, "pool manager stopping"), [{ busy: 1 }])
        assert.deepStrictEqual(entries(logged, "worker retired"), [{ worker: 1 }])
        assert.deepStrictEqual(entries(logged, "pool manager stopped"), [{}])
        assert.isTrue(
          logged.every((entry) => entry.level === "Debug"),
          "all at Debug level"
        )
      }).pipe(logging(logged))
    })
  )

  it.effect("the reaper retires the worker idle the longest first", () =>
    Effect.suspend(() => {
      const logged: Array<LogLine> = []
      return Effect.gen(function* () {
        const manager = yield* startedWith({ debug: true, idleWorkerTimeout: "1 hour", clientsDeadline: "1 hour" })
        const first = yield* connect(manager)
        const second = yield* connect(manager)
        // worker 2 goes idle a second before worker 1
        yield* second.end
        yield* settle
        yield* TestClock.adjust("1 second")
        yield* first.end
        yield* settle
        yield* TestClock.adjust("1 second")
        // both are now past the new timeout, and only one may go
        yield* manager.setConfig({ minWorkersCount: 1, idleWorkerTimeout: "1 second" })
        yield* settle
        assert.deepStrictEqual(entries(logged, "worker retired"), [{ worker: 2 }])
        assert.strictEqual((yield* manager.stats).workers, 1)
      }).pipe(logging(logged))
    })
  )
})

describe("PoolManager drain warnings", () => {
  it.effect("a stop that drains in time warns of nothing; one past drainTimeout names what it interrupts", () =>
    Effect.suspend(() => {
      const logged: Array<LogLine> = []
      return Effect.gen(function* () {
        const stuck: PoolManager.Callback = () => Effect.never
        const manager = yield* startedWith({ drainTimeout: "10 seconds" }, stuck)
        yield* connect(manager)
        yield* manager.stop
        assert.deepStrictEqual(
          logged.filter((entry) => entry.level === "Warn"),
          []
        )
        yield* manager.start
        const client = yield* connect(manager)
        yield* client.send("stuck")
        yield* settle
        yield* Effect.forkChild(manager.stop)
        yield* TestClock.adjust("10 seconds")
        yield* settle
        const warnings = logged.filter((entry) => entry.level === "Warn")
        assert.deepStrictEqual(
          warnings.map(({ message, annotations }) => ({ message, annotations })),
          [
            {
              message: "drainTimeout passed: interrupting the callbacks still running",
              annotations: { busy: 1, drainTimeout: "10s" }
            }
          ]
        )
      }).pipe(logging(logged))
    })
  )
})
