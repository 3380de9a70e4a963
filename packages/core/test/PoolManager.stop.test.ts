import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, type PoolError, PoolManager } from "../src/index.ts"
import { connect, type Seen, settle, started } from "./utils/manager.ts"
import { nextReply, serverClosed, soon } from "./utils/soon.ts"

const decoder = new TextDecoder()

/** A callback that sleeps `delay` before answering, recording each body. */
const slow =
  (seen: Seen, delay: Duration.Input): PoolManager.Callback =>
  (conn, body) =>
    Effect.sleep(delay).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          seen.push(decoder.decode(body))
          return Effect.orDie(conn.write(`done:${decoder.decode(body)}`))
        })
      )
    )

describe("PoolManager.stop", () => {
  it.effect("closes idle connections at once and ends every worker", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 2, clientsDeadline: "1 hour" })
      const clients = yield* Effect.forEach(Array.from({ length: 3 }), () => connect(manager))
      yield* manager.stop
      for (const client of clients) assert.isTrue(yield* client.isClosed)
      const stats = yield* manager.stats
      assert.strictEqual(stats.workers, 0)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(stats.closedByStop, 3)
      assert.isFalse(stats.running)
    })
  )

  it.effect("waits for a slow callback, flushes its reply, then closes", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* PoolManager.make({ drainTimeout: "30 seconds" }, slow(seen, "5 seconds"))
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("work")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      // put is refused as soon as stop begins
      const { connection } = yield* MemoryConnection.make()
      assert.strictEqual((yield* Effect.flip(manager.put(connection)))._tag, "NotRunningError")
      assert.isUndefined(stopping.pollUnsafe())
      yield* TestClock.adjust("5 seconds")
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.strictEqual(yield* nextReply(client), "done:work")
      assert.isTrue(yield* client.isClosed)
      assert.deepStrictEqual(seen, ["work"])
      assert.strictEqual((yield* manager.stats).interruptedByDrain, 0)
    })
  )

  it.effect("waits for a slow callback also after an earlier connection came and went", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* PoolManager.make({ drainTimeout: "30 seconds" }, slow(seen, "5 seconds"))
      yield* manager.start
      // A connection of the same run that ends before the stop: the pool is
      // empty for a moment while running, which must not count as drained.
      const first = yield* connect(manager)
      yield* first.end
      yield* serverClosed(first)
      yield* settle
      assert.strictEqual((yield* manager.stats).busy, 0, "the first connection ended")
      const client = yield* connect(manager)
      yield* client.send("work")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      assert.isUndefined(stopping.pollUnsafe(), "stop waits for the busy callback")
      yield* TestClock.adjust("5 seconds")
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.strictEqual(yield* nextReply(client), "done:work")
      assert.strictEqual((yield* manager.stats).interruptedByDrain, 0)
    })
  )

  it.effect("fails a queued put at once while a busy callback still drains", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const manager = yield* PoolManager.make(
        { maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 hour", drainTimeout: "1 hour" },
        (conn) => Deferred.await(release).pipe(Effect.andThen(Effect.orDie(conn.write("done"))))
      )
      yield* manager.start
      // Added after the manager, so it runs before the manager's own stop: a
      // failed assertion ends the test at once instead of hanging in the drain.
      yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
      const busy = yield* connect(manager)
      yield* busy.send("work")
      yield* settle
      const { connection } = yield* MemoryConnection.make()
      const queued = yield* Effect.forkChild(Effect.flip(manager.put(connection)))
      yield* settle
      assert.strictEqual((yield* manager.stats).waiting, 1)
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      // The callback has not finished, so nothing was freed: only stop can have failed the put.
      assert.isUndefined(stopping.pollUnsafe(), "stop is still draining the busy callback")
      const failed = queued.pollUnsafe()
      assert.isDefined(failed, "the queued put failed without waiting for the drain")
      assert.strictEqual((yield* soon(Fiber.join(queued), "the queued put to complete"))._tag, "NotRunningError")
      assert.strictEqual((yield* manager.stats).waiting, 0)
      yield* Deferred.succeed(release, undefined)
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.strictEqual(yield* nextReply(busy), "done")
    })
  )

  it.effect("bytes that arrived before stop are handled as a message before the close", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({}, seen)
      const client = yield* connect(manager)
      yield* client.send("early")
      assert.strictEqual(yield* nextReply(client), "OK:early")
      // bytes arrive, and stop begins before the waiting worker gets to run
      yield* client.send("late")
      yield* manager.stop
      assert.deepStrictEqual(seen, ["early", "late"])
      assert.strictEqual(yield* nextReply(client), "OK:late")
      assert.isTrue(yield* client.isClosed)
    })
  )

  it.effect("interrupts what still runs after drainTimeout", () =>
    Effect.gen(function* () {
      const interrupted = yield* Deferred.make<void>()
      const callback: PoolManager.Callback = () =>
        Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
      const manager = yield* PoolManager.make({ drainTimeout: "10 seconds" }, callback)
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("stuck")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* TestClock.adjust("9 seconds")
      assert.isUndefined(stopping.pollUnsafe())
      assert.isFalse(yield* client.isClosed)
      yield* TestClock.adjust("1 second")
      yield* soon(Fiber.join(stopping), "stop to complete")
      yield* soon(Deferred.await(interrupted), "the callback to be interrupted")
      assert.isTrue(yield* client.isClosed)
      const stats = yield* manager.stats
      assert.strictEqual(stats.interruptedByDrain, 1)
      assert.strictEqual(stats.workers, 0)
      assert.strictEqual(stats.busy, 0)
    })
  )

  it.effect("stop then start under load, repeatedly, leaks no workers or sessions", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ minWorkersCount: 2, maxWorkersCount: 5 }, seen)
      for (let round = 0; round < 20; round++) {
        const clients = yield* Effect.forEach(Array.from({ length: 4 }), () => connect(manager))
        yield* Effect.forEach(clients, (client) => client.send(`r${round}`))
        yield* manager.stop
        for (const client of clients) assert.strictEqual(yield* nextReply(client), `OK:r${round}`)
        const stats = yield* manager.stats
        assert.strictEqual(stats.workers, 0)
        assert.strictEqual(stats.busy, 0)
        yield* manager.start
      }
      assert.strictEqual(seen.length, 80)
      const stats = yield* manager.stats
      assert.strictEqual(stats.workers, 2)
      assert.strictEqual(stats.spawned - stats.retired, 2)
    })
  )

  it.effect("stop on a stopped manager does nothing", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      yield* manager.stop
      yield* manager.stop
      assert.isFalse((yield* manager.stats).running)
    })
  )
})

describe("PoolManager callback failures", () => {
  it.effect("a failing, a throwing and a dying callback close only their connection and keep the worker", () =>
    Effect.gen(function* () {
      const callback: PoolManager.Callback<string> = (conn, body) => {
        const text = decoder.decode(body)
        if (text === "throw") throw new Error("thrown by the callback")
        if (text === "fail") return Effect.fail("failed by the callback")
        if (text === "die") return Effect.die(new Error("died in the callback"))
        return Effect.orDie(conn.write("OK"))
      }
      const manager = yield* PoolManager.make({ minWorkersCount: 1, maxWorkersCount: 1 }, callback)
      yield* manager.start
      for (const kind of ["fail", "throw", "die"]) {
        const client = yield* connect(manager)
        yield* client.send("hello")
        assert.strictEqual(yield* nextReply(client), "OK")
        yield* client.send(kind)
        yield* serverClosed(client)
        yield* settle
      }
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 3)
      assert.strictEqual(stats.workers, 1)
      assert.strictEqual(stats.spawned, 1)
      assert.strictEqual(stats.busy, 0)
      // the single worker still serves
      const client = yield* connect(manager)
      yield* client.send("again")
      assert.strictEqual(yield* nextReply(client), "OK")
    })
  )

  it.effect("a write that fails because the peer reset is a peer close, not a callback failure", () =>
    Effect.gen(function* () {
      const callback: PoolManager.Callback<PoolError.ConnectionError> = (conn) =>
        Effect.andThen(Effect.sleep("1 second"), conn.write("late reply"))
      const manager = yield* PoolManager.make({}, callback)
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("hello")
      yield* settle
      yield* client.reset
      yield* TestClock.adjust("1 second")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 0)
      assert.strictEqual(stats.closedByPeer, 1)
      assert.strictEqual(stats.busy, 0)
    })
  )
})
