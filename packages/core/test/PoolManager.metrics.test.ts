import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import { MemoryConnection } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"

const seriesValue = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, reason?: string) => {
  const found = snapshots.find((s) => s.id === id && (reason === undefined || s.attributes?.reason === reason))
  if (found === undefined) throw new Error(`no metric ${id}`)
  const state = found.state as { count?: number; value?: number }
  return state.count ?? state.value
}

describe("PoolManager metrics", () => {
  it.effect("series follow the manager, read only when a snapshot is taken", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 2, maxWorkersCount: 2, clientsDeadline: "1 second" })
      const a = yield* connect(manager)
      yield* a.send("hello")
      assert.strictEqual(yield* a.receiveText, "OK:hello")
      yield* connect(manager)
      const { connection } = yield* MemoryConnection.make()
      yield* Effect.flip(manager.put(connection))
      let snapshots = yield* Metric.snapshot
      assert.strictEqual(seriesValue(snapshots, "pool_workers"), 2)
      assert.strictEqual(seriesValue(snapshots, "pool_workers_busy"), 2)
      assert.strictEqual(seriesValue(snapshots, "pool_workers_idle"), 0)
      assert.strictEqual(seriesValue(snapshots, "pool_workers_max"), 2)
      assert.strictEqual(seriesValue(snapshots, "pool_connections_accepted_total"), 2)
      assert.strictEqual(seriesValue(snapshots, "pool_connections_rejected_total", "busy"), 1)
      assert.strictEqual(seriesValue(snapshots, "pool_messages_total"), 1)
      assert.strictEqual(seriesValue(snapshots, "pool_bytes_read_total"), 5)
      assert.strictEqual(seriesValue(snapshots, "pool_bytes_written_total"), 8)
      yield* a.end
      yield* TestClock.adjust("1 second")
      yield* settle
      snapshots = yield* Metric.snapshot
      assert.strictEqual(seriesValue(snapshots, "pool_connections_closed_total", "peer"), 1)
      assert.strictEqual(seriesValue(snapshots, "pool_connections_closed_total", "deadline"), 1)
      assert.strictEqual(seriesValue(snapshots, "pool_bytes_written_total"), 8)
      const histogram = snapshots.find((s) => s.id === "pool_callback_duration_seconds")!.state as Metric.HistogramState
      assert.strictEqual(histogram.count, 1)
      const text = yield* PrometheusMetrics.format()
      assert.include(text, 'pool_connections_closed_total{reason="deadline"} 1')
      assert.include(text, "pool_callback_duration_seconds_bucket")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("series are removed when the manager's scope closes", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(started({}))
      assert.isFalse((yield* Metric.snapshot).some((s) => s.id.startsWith("pool_")))
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
