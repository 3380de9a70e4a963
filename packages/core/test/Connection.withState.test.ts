import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { PoolManager } from "../src/index.ts"
import { collecting, type Logged } from "./utils/framing.ts"
import { connect, settle } from "./utils/manager.ts"
import { serverClosed, soon } from "./utils/soon.ts"
import { recording } from "./utils/tracing.ts"

// How a connection ends when the `init` of its state (`PoolManager.withState`)
// fails or is cut short.

const answer: PoolManager.Callback<never, never, string> = (conn, _body, _len, state) => Effect.orDie(conn.write(state))

describe("withState: an init that fails", () => {
  it.effect("is logged as a failed state init, and the connection's span says callback failed", () => {
    const { tracer, named } = recording()
    const logged: Array<Logged> = []
    return Effect.gen(function* () {
      const manager = yield* PoolManager.make(
        {},
        PoolManager.withState(() => Effect.fail("no session"), answer)
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* serverClosed(client)
      yield* settle
      assert.strictEqual(logged.length, 1)
      assert.include(logged[0]!.message, "state init failed")
      const [connection] = named("pool.connection")
      assert.strictEqual(connection!.attributes.get("pool.close_reason"), "callback failed")
    }).pipe(
      Effect.provideService(Tracer.Tracer, tracer),
      Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)]))
    )
  })

  it.effect("hangs up at once, while the finalizers it registered still run", () =>
    Effect.gen(function* () {
      let released = false
      const manager = yield* PoolManager.make(
        {},
        PoolManager.withState(
          () =>
            Effect.addFinalizer(() =>
              Effect.sleep("1 second").pipe(
                Effect.andThen(
                  Effect.sync(() => {
                    released = true
                  })
                )
              )
            ).pipe(Effect.andThen(Effect.fail("no session"))),
          answer
        )
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* settle
      assert.isFalse(released)
      assert.isTrue(yield* client.isClosed, "the client waited for the state's finalizers")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.isTrue(released)
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.busy, 0)
    })
  )
})

describe("withState: an init cut short by stop's drainTimeout", () => {
  it.effect("is counted as interrupted by the drain, not as a failure of the callback", () => {
    const logged: Array<Logged> = []
    return Effect.gen(function* () {
      const manager = yield* PoolManager.make(
        { drainTimeout: "1 second" },
        PoolManager.withState(() => Effect.never as Effect.Effect<string>, answer)
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      assert.isUndefined(stopping.pollUnsafe(), "stop did not wait for the init")
      yield* TestClock.adjust("1 second")
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.isTrue(yield* client.isClosed)
      const stats = yield* manager.stats
      assert.strictEqual(stats.interruptedByDrain, 1)
      assert.strictEqual(stats.callbackFailures, 0)
      // The drain logs its own warning; no failure is logged for the cut-short init.
      assert.deepStrictEqual(
        logged.filter((entry) => entry.message.includes("failed")),
        []
      )
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)])))
  })

  it.effect("an init that interrupts itself (not stop) is a failure like any other: counted, logged, closed", () => {
    const logged: Array<Logged> = []
    return Effect.gen(function* () {
      const manager = yield* PoolManager.make(
        {},
        // As when the init joins a fiber that was interrupted.
        PoolManager.withState(() => Effect.interrupt as Effect.Effect<string>, answer)
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* settle
      assert.isTrue(yield* client.isClosed)
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.interruptedByDrain, 0, "no stop ran")
      assert.strictEqual(stats.busy, 0)
      assert.deepStrictEqual(
        logged.map((entry) => entry.message),
        ["connection state init failed; closing its connection"]
      )
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)])))
  })
})

describe("withState: a waiting connection cut by stop's drainTimeout", () => {
  it.effect("is served nothing that arrives while its state's finalizer runs", () =>
    Effect.gen(function* () {
      let runs = 0
      const manager = yield* PoolManager.make(
        // No drain at all: the connection is cut while it waits, before stop wakes it.
        { drainTimeout: 0 },
        PoolManager.withState(
          () => Effect.addFinalizer(() => Effect.sleep("1 second")).pipe(Effect.as("state")),
          (conn) =>
            Effect.suspend(() => {
              runs++
              return Effect.orDie(conn.write("OK"))
            })
        )
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* Effect.yieldNow
      // The loop has ended; the connection closes once the finalizer is done.
      yield* client.send("late")
      yield* settle
      assert.strictEqual(runs, 0)
      assert.strictEqual((yield* manager.stats).messages, 0, "a message nobody serves is not counted")
      yield* TestClock.adjust("1 second")
      yield* soon(Fiber.join(stopping), "stop to complete")
      const stats = yield* manager.stats
      assert.strictEqual(stats.interruptedByDrain, 1)
      assert.strictEqual(stats.messages, 0)
      assert.isTrue(yield* client.isClosed)
    })
  )
})
