import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolManager } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"
import { nextReply } from "./utils/soon.ts"

const seriesValue = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, reason?: string) => {
  const found = snapshots.find((s) => s.id === id && (reason === undefined || s.attributes?.reason === reason))
  if (found === undefined) throw new Error(`no metric ${id}`)
  const state = found.state as { count?: number; value?: number }
  return state.count ?? state.value
}

// The series the README's metrics table documents, as `Type name{reason}`.
const documented = [
  "Gauge pool_running",
  "Gauge pool_workers",
  "Gauge pool_workers_busy",
  "Gauge pool_workers_idle",
  "Gauge pool_workers_min",
  "Gauge pool_workers_max",
  "Gauge pool_connections_waiting",
  "Counter pool_connections_accepted_total",
  "Counter pool_connections_rejected_total{busy}",
  "Counter pool_connections_rejected_total{address}",
  "Counter pool_queue_timeouts_total",
  "Histogram pool_queue_wait_seconds",
  ...["peer", "deadline", "size", "framing", "messages", "callback", "stop", "drain"].map(
    (reason) => `Counter pool_connections_closed_total{${reason}}`
  ),
  "Counter pool_messages_total",
  "Counter pool_bytes_read_total",
  "Counter pool_bytes_written_total",
  "Counter pool_callback_failures_total",
  "Histogram pool_callback_duration_seconds",
  "Counter pool_workers_spawned_total",
  "Counter pool_workers_retired_total"
]

const label = (s: Metric.Metric.Snapshot) => {
  const reason = s.attributes?.reason
  return `${s.type} ${s.id}${reason === undefined ? "" : `{${reason}}`}`
}

describe("PoolManager metrics", () => {
  it.effect("the manager registers exactly the documented series, each with a help text", () =>
    Effect.gen(function* () {
      yield* PoolManager.make({}, () => Effect.void)
      const snapshots = yield* Metric.snapshot
      assert.deepStrictEqual(snapshots.map(label).sort(), [...documented].sort())
      for (const s of snapshots) {
        assert.isAbove(s.description?.length ?? 0, 0, `${label(s)} has no description (Prometheus HELP)`)
        // Totals only ever grow: exporters may treat them as monotonic.
        if (s.type === "Counter") assert.isTrue((s.state as Metric.CounterState<number>).incremental, label(s))
      }
      // The histograms are read in seconds, from 100 µs to 10 s, in Prometheus' text too.
      const text = yield* PrometheusMetrics.format()
      for (const name of ["pool_queue_wait_seconds", "pool_callback_duration_seconds"]) {
        assert.include(text, `${name}_bucket{le="0.0001"} 0`)
        assert.include(text, `${name}_bucket{le="10"} 0`)
      }
      assert.include(text, "# TYPE pool_messages_total counter")
      assert.include(text, "# TYPE pool_running gauge")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("each series reads the statistic of the same name in manager.stats", () =>
    Effect.gen(function* () {
      // Both workers busy, one put waiting for them, bytes read and written.
      const manager = yield* started({ minWorkersCount: 2, maxWorkersCount: 2, admissionPolicy: "queue" })
      const a = yield* connect(manager)
      yield* a.send("hello")
      assert.strictEqual(yield* nextReply(a), "OK:hello")
      const b = yield* connect(manager)
      yield* b.send("hi")
      assert.strictEqual(yield* nextReply(b), "OK:hi")
      yield* b.end
      yield* settle
      yield* connect(manager)
      yield* Effect.forkChild(connect(manager))
      yield* settle
      const stats = yield* manager.stats
      const snapshots = yield* Metric.snapshot
      const read = (id: string, reason?: string) => seriesValue(snapshots, id, reason)
      assert.deepStrictEqual(
        {
          running: read("pool_running"),
          workers: read("pool_workers"),
          busy: read("pool_workers_busy"),
          idle: read("pool_workers_idle"),
          waiting: read("pool_connections_waiting"),
          accepted: read("pool_connections_accepted_total"),
          messages: read("pool_messages_total"),
          bytesRead: read("pool_bytes_read_total"),
          bytesWritten: read("pool_bytes_written_total"),
          closedByPeer: read("pool_connections_closed_total", "peer"),
          spawned: read("pool_workers_spawned_total")
        },
        {
          running: 1,
          workers: stats.workers,
          busy: stats.busy,
          idle: stats.idle,
          waiting: stats.waiting,
          accepted: stats.accepted,
          messages: stats.messages,
          bytesRead: stats.bytesRead,
          bytesWritten: stats.bytesWritten,
          closedByPeer: stats.closedByPeer,
          spawned: stats.spawned
        }
      )
      assert.isTrue(stats.running)
      assert.deepStrictEqual([stats.workers, stats.busy, stats.idle, stats.waiting], [2, 2, 0, 1])
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("series follow the manager, read only when a snapshot is taken", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 2, maxWorkersCount: 2, clientsDeadline: "1 second" })
      const a = yield* connect(manager)
      yield* a.send("hello")
      assert.strictEqual(yield* nextReply(a), "OK:hello")
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
