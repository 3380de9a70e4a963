import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { PoolManager } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"
import { nextReply, soon } from "./utils/soon.ts"

// A gauge's value as a scrape reads it.
const gauge = (id: string) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((s) => s.id === id)
    assert.isDefined(found, `no series ${id}`)
    return (found!.state as Metric.GaugeState<number>).value
  })

describe("PoolManager stats gauges", () => {
  it.effect("pool_running is 1 from start to the beginning of stop, 0 before, while draining and after", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({ drainTimeout: "1 second" }, (conn) =>
        Effect.orDie(conn.write("OK")).pipe(Effect.andThen(Effect.never))
      )
      assert.strictEqual(yield* gauge("pool_running"), 0, "before start")
      yield* manager.start
      assert.strictEqual(yield* gauge("pool_running"), 1, "started")
      const client = yield* connect(manager)
      yield* client.send("x")
      assert.strictEqual(yield* nextReply(client), "OK")
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      assert.isUndefined(stopping.pollUnsafe(), "stop waits for the callback")
      assert.isFalse((yield* manager.stats).running)
      assert.strictEqual(yield* gauge("pool_running"), 0, "while draining")
      yield* TestClock.adjust("1 second")
      yield* soon(Fiber.join(stopping), "stop to end after drainTimeout")
      assert.strictEqual(yield* gauge("pool_running"), 0, "stopped")
      yield* manager.start
      assert.strictEqual(yield* gauge("pool_running"), 1, "started again")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("pool_workers_idle and pool_connections_waiting count idle workers and queued puts", () =>
    Effect.gen(function* () {
      // Two workers spawned, then the maximum lowered to 1: one worker serves,
      // the other stays idle, and the next put queues behind the maximum.
      const manager = yield* started({ maxWorkersCount: 2, admissionPolicy: "queue" })
      const first = yield* connect(manager)
      const second = yield* connect(manager)
      yield* first.send("a")
      assert.strictEqual(yield* nextReply(first), "OK:a")
      yield* second.end
      yield* settle
      yield* manager.setConfig({ maxWorkersCount: 1 })
      assert.strictEqual(yield* gauge("pool_workers_idle"), 1)
      assert.strictEqual(yield* gauge("pool_connections_waiting"), 0)
      const queued = yield* Effect.forkChild(connect(manager))
      yield* settle
      assert.strictEqual(yield* gauge("pool_workers"), 2)
      assert.strictEqual(yield* gauge("pool_workers_idle"), 1)
      assert.strictEqual(yield* gauge("pool_connections_waiting"), 1)
      const stats = yield* manager.stats
      assert.deepStrictEqual([stats.idle, stats.waiting], [1, 1])
      yield* first.end
      yield* settle
      yield* soon(Fiber.join(queued), "the queued put to be admitted")
      assert.strictEqual(yield* gauge("pool_connections_waiting"), 0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
