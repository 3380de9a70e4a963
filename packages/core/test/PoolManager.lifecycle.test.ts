import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolError, PoolManager } from "../src/index.ts"
import { connect, echo, settle, started } from "./utils/manager.ts"
import { nextReply, soon } from "./utils/soon.ts"

/** Runs `effect` in a fiber that yields to the scheduler every few operations. */
const yieldingOften = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Scheduler.MaxOpsBeforeYield, 3)

describe("PoolManager stop, racing puts", () => {
  it.effect("a put never succeeds once stop has begun, and a put refused by stop frees its slot", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 12; k++) {
        const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 hour" })
        yield* connect(manager)
        const { connection } = yield* MemoryConnection.make()
        const waiting = yield* Effect.forkChild(yieldingOften(Effect.andThen(manager.put(connection), manager.stats)), {
          startImmediately: true
        })
        for (let i = 0; i < k; i++) yield* Effect.yieldNow
        yield* manager.setConfig({ maxWorkersCount: 2 })
        yield* manager.stop
        const exit = yield* soon(Fiber.await(waiting), `the put (k=${k}) settled`)
        if (Exit.isSuccess(exit)) assert.isTrue(exit.value.running, `k=${k}: put succeeded on a stopping manager`)
        else assert.isTrue(Cause.hasFails(exit.cause), `k=${k}: ${Cause.pretty(exit.cause)}`)
        yield* manager.setConfig({ admissionPolicy: "reject" })
        yield* manager.start
        yield* connect(manager)
        yield* connect(manager)
        yield* manager.stop
      }
    })
  )

  it.effect("a put still waiting for its worker when drainTimeout passes fails, and the pool never touches it", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 1, maxWorkersCount: 0, drainTimeout: 0 })
      yield* connect(manager)
      const { client, connection } = yield* MemoryConnection.make()
      const putting = yield* Effect.forkChild(manager.put(connection), { startImmediately: true })
      yield* manager.stop
      const exit = yield* soon(Fiber.await(putting), "the put settled")
      assert.isTrue(Exit.isFailure(exit) && Cause.hasFails(exit.cause), "the put failed")
      if (Exit.isFailure(exit)) assert.instanceOf(Cause.squash(exit.cause), PoolError.NotRunningError)
      yield* client.send("hello")
      yield* settle
      assert.isFalse(yield* client.isClosed)
      yield* manager.start
      assert.deepInclude(yield* manager.stats, { workers: 1, idle: 1, busy: 0 })
    })
  )

  it.effect("stop closes the connections waiting for a message even while another one is busy", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const manager = yield* PoolManager.make({ clientsDeadline: "1 hour", drainTimeout: "1 hour" }, (conn) =>
        Deferred.await(release).pipe(Effect.andThen(Effect.orDie(conn.write("done"))))
      )
      yield* manager.start
      yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
      const busy = yield* connect(manager)
      yield* busy.send("work")
      yield* settle
      const idle = yield* connect(manager)
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* soon(idle.closed, "the idle connection closed by stop")
      assert.isUndefined(stopping.pollUnsafe(), "stop waits for the busy callback")
      yield* Deferred.succeed(release, undefined)
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.strictEqual(yield* nextReply(busy), "done")
    })
  )

  it.effect("an infinite drainTimeout waits for the callbacks however long they take", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({ drainTimeout: Duration.infinity }, (conn) =>
        Effect.sleep("1 hour").pipe(Effect.andThen(Effect.orDie(conn.write("done"))))
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("work")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* TestClock.adjust("59 minutes")
      assert.isUndefined(stopping.pollUnsafe())
      yield* TestClock.adjust("1 minute")
      yield* soon(Fiber.join(stopping), "stop completed")
      assert.strictEqual(yield* nextReply(client), "done")
      assert.strictEqual((yield* manager.stats).interruptedByDrain, 0)
    })
  )

  it.effect("raising minWorkersCount while stop drains spawns nothing", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const manager = yield* PoolManager.make({ drainTimeout: "1 hour" }, (conn) =>
        Deferred.await(release).pipe(Effect.andThen(Effect.orDie(conn.write("done"))))
      )
      yield* manager.start
      yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
      const client = yield* connect(manager)
      yield* client.send("work")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      yield* manager.setConfig({ minWorkersCount: 3 })
      assert.deepInclude(yield* manager.stats, { workers: 1, spawned: 1 })
      yield* Deferred.succeed(release, undefined)
      yield* soon(Fiber.join(stopping), "stop to complete")
      yield* manager.start
      assert.strictEqual((yield* manager.stats).workers, 3)
    })
  )

  it.effect("setConfig racing stop completes", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      const setting = yield* Effect.forkChild(manager.setConfig({ minWorkersCount: 3 }), { startImmediately: true })
      const stopping = yield* Effect.forkChild(manager.stop, { startImmediately: true })
      const exit = yield* soon(Fiber.await(setting), "setConfig completed")
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.isTrue(Exit.isSuccess(exit))
    })
  )
})

describe("PoolManager put from a fiber that yields every few operations", () => {
  it.effect("a put that waits for a worker to be spawned completes, and its connection is served", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      const { client, connection } = yield* MemoryConnection.make()
      // The worker is lent while the put's fiber has yielded, before it waits to hear so.
      yield* soon(yieldingOften(manager.put(connection)), "the put completed")
      yield* client.send("hello")
      assert.strictEqual(yield* nextReply(client), "OK:hello")
      assert.deepInclude(yield* manager.stats, { busy: 1, accepted: 1 })
    })
  )

  it.effect("a put whose worker is refused by a stop fails, at whatever point the stop finds it", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 12; k++) {
        const manager = yield* started({ drainTimeout: 0 })
        const { client, connection } = yield* MemoryConnection.make()
        const putting = yield* Effect.forkChild(yieldingOften(manager.put(connection)), { startImmediately: true })
        for (let i = 0; i < k; i++) yield* Effect.yieldNow
        yield* manager.stop
        const exit = yield* soon(Fiber.await(putting), `the put (k=${k}) settled`)
        const { accepted } = yield* manager.stats
        // A put succeeds exactly when its connection got a worker.
        if (Exit.isSuccess(exit)) assert.strictEqual(accepted, 1, `k=${k}: put succeeded without a worker`)
        else {
          assert.instanceOf(Cause.squash(exit.cause), PoolError.NotRunningError, `k=${k}`)
          assert.strictEqual(accepted, 0, `k=${k}: put failed but its connection was served`)
          assert.isFalse(yield* client.isClosed, `k=${k}: a refused connection stays with the caller`)
        }
      }
    })
  )
})

describe("PoolManager callback context", () => {
  it.effect("callbacks run under the span the manager was made in", () =>
    Effect.gen(function* () {
      const parents: Array<string> = []
      const manager = yield* PoolManager.make({}, (conn, body, len) =>
        Effect.gen(function* () {
          const parent = yield* Effect.currentParentSpan
          parents.push(parent._tag === "Span" ? parent.name : parent._tag)
          return yield* echo([])(conn, body, len)
        }).pipe(Effect.orDie)
      ).pipe(Effect.withSpan("application"))
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("x")
      assert.strictEqual(yield* nextReply(client), "OK:x")
      assert.deepStrictEqual(parents, ["application"])
    })
  )
})
