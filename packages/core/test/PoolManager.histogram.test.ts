import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import { connect, settle, started } from "./utils/manager.ts"
import { soon } from "./utils/soon.ts"

const histogram = (id: string) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((s) => s.id === id)
    assert.isDefined(found, `no series ${id}`)
    return found!.state as Metric.HistogramState
  })

describe("PoolManager duration histograms", () => {
  it.effect("pool_queue_wait_seconds puts each wait in the first bucket whose bound it does not exceed", () =>
    Effect.gen(function* () {
      const manager = yield* started({
        maxWorkersCount: 1,
        admissionPolicy: "queue",
        queueTimeout: "1 minute",
        clientsDeadline: "1 hour"
      })
      // Waits on a bucket bound (1 ms), past the last bound (11 s), none at all, and between 5 s and 10 s;
      // neither the shortest nor the longest comes last.
      const waits = [Duration.millis(1), Duration.seconds(11), Duration.zero, Duration.seconds(7)]
      let holder = yield* connect(manager)
      for (const wait of waits) {
        const queued = yield* Effect.forkChild(connect(manager))
        yield* settle
        assert.strictEqual((yield* manager.stats).waiting, 1)
        yield* TestClock.adjust(wait)
        yield* holder.end
        yield* settle
        holder = yield* soon(Fiber.join(queued), "the queued put to be admitted")
      }
      const state = yield* histogram("pool_queue_wait_seconds")
      const seconds = waits.map((wait) => Duration.toMillis(wait) / 1000)
      const bounds = state.buckets.map(([bound]) => bound)
      assert.strictEqual(bounds[0], 0.0001, "the first bucket is 100 µs")
      assert.strictEqual(bounds.at(-1), 10, "the last finite bucket is 10 s")
      assert.deepStrictEqual(
        bounds,
        [...bounds].sort((a, b) => a - b),
        "bounds ascend"
      )
      // Cumulative counts, with inclusive upper bounds (Prometheus' `le`).
      assert.deepStrictEqual(
        state.buckets,
        bounds.map((bound) => [bound, seconds.filter((s) => s <= bound).length])
      )
      assert.deepStrictEqual(
        state.buckets.filter(([bound]) => bound === 0.0005 || bound === 0.001 || bound === 5 || bound === 10),
        [
          [0.0005, 1],
          [0.001, 2],
          [5, 2],
          [10, 3]
        ]
      )
      assert.strictEqual(state.count, 4)
      assert.closeTo(state.sum, 18.001, 1e-9)
      assert.strictEqual(state.min, 0)
      assert.strictEqual(state.max, 11)
      const text = yield* PrometheusMetrics.format()
      assert.include(text, 'pool_queue_wait_seconds_bucket{le="0.001"} 2')
      assert.include(text, 'pool_queue_wait_seconds_bucket{le="+Inf"} 4')
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a single wait is both the minimum and the maximum", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "2 seconds" })
      yield* connect(manager)
      const refused = yield* Effect.forkChild(Effect.flip(connect(manager)))
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* soon(Fiber.join(refused), "the queued put to time out")
      const state = yield* histogram("pool_queue_wait_seconds")
      assert.deepStrictEqual([state.count, state.sum, state.min, state.max], [1, 2, 2, 2])
      // Nothing is observed in pool_callback_duration_seconds without a message.
      const callback = yield* histogram("pool_callback_duration_seconds")
      assert.strictEqual(callback.count, 0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
