/**
 * The two defects of issue 12: stats that add up at every instant, and a
 * queue wait that can be interrupted with an atomic hand-over (either a worker
 * owns the connection and `put` succeeded, or `put` failed or was interrupted
 * and the pool never touched the connection).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, type PoolManager } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"
import { nextReply, soon } from "./utils/soon.ts"

/** Fails the test when a snapshot does not add up. */
const assertConsistent = (stats: PoolManager.PoolStats, context: string) => {
  const at = `${context}: workers=${stats.workers} busy=${stats.busy} idle=${stats.idle} accepted=${stats.accepted}`
  assert.isAtMost(stats.busy, stats.workers, `busy above workers, ${at}`)
  assert.isAtMost(stats.busy + stats.idle, stats.workers, `busy + idle above workers, ${at}`)
  assert.isAtMost(stats.busy, stats.accepted, `busy counted before a worker was lent, ${at}`)
}

const gauge = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string): number =>
  (snapshots.find((s) => s.id === id)!.state as { value: number }).value

describe("PoolManager stats at every instant", () => {
  it.effect("puts waiting for freshly spawned workers: busy and idle add up after every scheduler turn", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 0, minWorkersCount: 0 })
      const connections = yield* Effect.forEach([1, 2, 3], () => MemoryConnection.make())
      const puts = yield* Effect.forEach(connections, ({ connection }) => Effect.forkChild(manager.put(connection)))
      for (let turn = 0; turn < 20; turn++) {
        const stats = yield* manager.stats
        assertConsistent(stats, `turn ${turn}`)
        const snapshots = yield* Metric.snapshot
        assert.strictEqual(gauge(snapshots, "pool_workers_busy"), stats.busy, `turn ${turn}`)
        assert.strictEqual(gauge(snapshots, "pool_workers_idle"), stats.idle, `turn ${turn}`)
        yield* Effect.yieldNow
      }
      yield* soon(Fiber.joinAll(puts), "every put to complete")
      const stats = yield* manager.stats
      assert.deepInclude(stats, { workers: 3, busy: 3, idle: 0, accepted: 3 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("with a minimum: the prespawned workers are lent, new ones reserved, never counted twice", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 8, minWorkersCount: 2 })
      const connections = yield* Effect.forEach([1, 2, 3, 4, 5], () => MemoryConnection.make())
      const puts = yield* Effect.forEach(connections, ({ connection }) => Effect.forkChild(manager.put(connection)))
      for (let turn = 0; turn < 20; turn++) {
        assertConsistent(yield* manager.stats, `turn ${turn}`)
        yield* Effect.yieldNow
      }
      yield* soon(Fiber.joinAll(puts), "every put to complete")
      assert.deepInclude(yield* manager.stats, { workers: 5, busy: 5, idle: 0, accepted: 5 })
    })
  )
})

describe("PoolManager queue wait is interruptible", () => {
  it.effect("a put timed out while waiting fails at its deadline, and the pool never touches its connection", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "10 seconds" })
      const first = yield* connect(manager)
      const late = yield* MemoryConnection.make()
      const waiting = yield* Effect.forkChild(
        Effect.exit(manager.put(late.connection).pipe(Effect.timeout("100 millis")))
      )
      yield* settle
      assert.strictEqual((yield* manager.stats).waiting, 1)
      yield* TestClock.adjust("150 millis")
      const exit = waiting.pollUnsafe()
      assert.isDefined(exit, "put still pending after its timeout")
      const result = yield* soon(Fiber.join(waiting), "the waiting put to complete")
      assert.isTrue(Exit.isFailure(result) && Cause.hasFails(result.cause), "put did not fail with the timeout")
      assert.strictEqual((yield* manager.stats).waiting, 0)
      // capacity frees later: the timed-out connection must not be served
      yield* TestClock.adjust("350 millis")
      yield* first.end
      yield* settle
      yield* late.client.send("hello")
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.accepted, 1)
      assert.strictEqual(stats.messages, 0)
      assert.isFalse(yield* late.client.isClosed, "the pool closed a connection it never owned")
      assert.strictEqual(stats.busy, 0)
    })
  )

  it.effect("an interrupted waiter gives its place to the next one; the freed worker goes to it", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 hour" })
      const first = yield* connect(manager)
      const a = yield* MemoryConnection.make()
      const b = yield* MemoryConnection.make()
      const waitingA = yield* Effect.forkChild(manager.put(a.connection))
      yield* settle
      const waitingB = yield* Effect.forkChild(manager.put(b.connection))
      yield* settle
      yield* Fiber.interrupt(waitingA)
      assert.strictEqual((yield* manager.stats).waiting, 1)
      yield* first.end
      yield* settle
      yield* soon(Fiber.join(waitingB), "put b to complete")
      yield* b.client.send("b")
      assert.strictEqual(yield* nextReply(b.client), "OK:b")
      yield* a.client.send("a")
      yield* settle
      assert.isFalse(yield* a.client.isClosed)
      assert.deepInclude(yield* manager.stats, { accepted: 2, messages: 1, waiting: 0 })
    })
  )

  it.effect("a put interrupted while its worker is being spawned: the connection is never touched", () =>
    Effect.gen(function* () {
      for (const policy of ["reject", "queue"] as const) {
        const manager = yield* started({ maxWorkersCount: 0, admissionPolicy: policy })
        const { client, connection } = yield* MemoryConnection.make()
        const putting = yield* Effect.forkChild(manager.put(connection), { startImmediately: true })
        yield* Fiber.interrupt(putting)
        const exit = yield* soon(Fiber.await(putting), "the put to complete")
        yield* client.send("hello")
        yield* settle
        const stats = yield* manager.stats
        // No idle worker: put waits for the one being spawned, and the interruption lands there.
        assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), policy)
        assert.isFalse(yield* client.isClosed, policy)
        assert.deepInclude(stats, { accepted: 0, messages: 0, busy: 0, workers: 1, idle: 1 }, policy)
        yield* manager.stop
      }
    })
  )
})
