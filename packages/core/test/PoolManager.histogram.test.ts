import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import { vi } from "vitest"
import { type PoolError as Errors, Framing, type ManagerConfig, PoolManager } from "../src/index.ts"
import { fakeTransport } from "./utils/fakeTransport.ts"
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

// The clock is read once where a message ends and the wait for the next one
// (or the next frame) begins: the reading times the callback and is handed to
// the transport as the wait's start, which a transport on the same clock uses
// instead of reading it again.
describe("PoolManager: one clock reading between two messages", () => {
  // performance.now returning 1, 2, 3, ... ms while `body` runs.
  const withCountingClock = <A, E, R>(body: (readings: Array<number>) => Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const readings: Array<number> = []
        const spy = vi.spyOn(performance, "now").mockImplementation(() => {
          readings.push(readings.length + 1)
          return readings.length
        })
        return { readings, spy }
      }),
      ({ readings }) => body(readings),
      ({ spy }) => Effect.sync(() => spy.mockRestore())
    )

  // A started manager serving one fake connection, which then receives `chunk`
  // at once; `before` is how many readings there were when it arrived.
  const served = (
    config: ManagerConfig.Input,
    callback: PoolManager.Callback<Errors.ConnectionError> | PoolManager.SyncCallback,
    readings: Array<number>,
    chunk: string
  ) =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      const manager = yield* PoolManager.make(config, callback)
      yield* manager.start
      yield* manager.put(fake.connection)
      yield* settle
      const before = readings.length
      fake.arrive(chunk)
      fake.notify("readable")
      yield* settle
      return { fake, before }
    })

  it.effect("an Effect callback: the reading that ends a message starts the next wait", () =>
    withCountingClock((readings) =>
      Effect.gen(function* () {
        const { fake, before } = yield* served({}, (conn) => conn.write("OK"), readings, "one")
        assert.deepStrictEqual(fake.writes, ["OK"])
        // The message's start and end, nothing more; the second wait starts at the end.
        assert.strictEqual(readings.length - before, 2, `readings: ${readings.join(", ")}`)
        assert.deepStrictEqual(fake.waitStarts, [before, before + 2])
        const callback = yield* histogram("pool_callback_duration_seconds")
        assert.deepStrictEqual([callback.count, callback.sum], [1, 0.001])
      })
    ).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a synchronous callback: one chunk's two frames take three readings, the wait after them none", () =>
    withCountingClock((readings) =>
      Effect.gen(function* () {
        const sync = PoolManager.syncCallback((conn) => void conn.writeNow("OK"))
        const { fake, before } = yield* served({ framing: Framing.lines() }, sync, readings, "one\ntwo\n")
        assert.deepStrictEqual(fake.writes, ["OK", "OK"])
        // First start, first end = second start, second end = the wait's start.
        assert.strictEqual(readings.length - before, 3, `readings: ${readings.join(", ")}`)
        assert.deepStrictEqual(fake.waitStarts, [before, before + 3])
        const callback = yield* histogram("pool_callback_duration_seconds")
        assert.deepStrictEqual([callback.count, callback.sum], [2, 0.002])
      })
    ).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
