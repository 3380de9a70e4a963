/**
 * The manager's metrics, as Effect `Metric` series, from one table.
 *
 * The hot path only bumps plain numbers in the counters (and one histogram
 * bucket per message); the series read them when somebody takes a snapshot
 * (`Metric.registerUnsafe` with a `get` hook). So metrics cost nothing per
 * event beyond an increment, and nothing at all when nobody reads them.
 *
 * The table is keyed by the fields of `PoolStats`, so a statistic without a
 * series (or a series without a statistic) does not compile; the two series
 * that show configuration, and the histograms, come after it.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { PoolStats } from "../PoolManager.ts"
import { type DurationHistogram, durationBoundaries } from "./histogram.ts"
import type { ManagerState } from "./state.ts"
import * as Stats from "./stats.ts"

/** A series: a gauge (a value now) or a counter (a total), with its Prometheus name. */
interface Series {
  readonly kind: "gauge" | "counter"
  readonly name: string
  readonly description: string
  readonly reason?: string
}

const gauge = (name: string, description: string): Series => ({ kind: "gauge", name, description })
const total = (name: string, description: string, reason?: string): Series =>
  reason === undefined ? { kind: "counter", name, description } : { kind: "counter", name, description, reason }

const refused = "Connections refused by put, by reason"
const closed = "Connections closed by the pool, by reason"

/** The series of each statistic (the callback failures also count as a reason of closing). */
const table: { readonly [K in keyof PoolStats]: ReadonlyArray<Series> } = {
  running: [gauge("pool_running", "1 while the manager admits connections")],
  workers: [gauge("pool_workers", "Workers alive, busy or idle")],
  busy: [gauge("pool_workers_busy", "Connections being served")],
  idle: [gauge("pool_workers_idle", "Workers waiting for a connection")],
  waiting: [gauge("pool_connections_waiting", "Connections waiting for a worker (queue policy)")],
  accepted: [total("pool_connections_accepted_total", "Connections admitted by put")],
  rejected: [total("pool_connections_rejected_total", refused, "busy")],
  rejectedByAddress: [total("pool_connections_rejected_total", refused, "address")],
  queueTimeouts: [total("pool_queue_timeouts_total", "Connections refused after waiting queueTimeout")],
  messages: [total("pool_messages_total", "Messages handed to the callback")],
  bytesRead: [total("pool_bytes_read_total", "Bytes of those messages")],
  bytesWritten: [total("pool_bytes_written_total", "Bytes written to connections")],
  callbackFailures: [
    total("pool_callback_failures_total", "Callbacks that failed or died"),
    total("pool_connections_closed_total", closed, "callback")
  ],
  closedByDeadline: [total("pool_connections_closed_total", closed, "deadline")],
  closedBySize: [total("pool_connections_closed_total", closed, "size")],
  closedByFraming: [total("pool_connections_closed_total", closed, "framing")],
  closedByPeer: [total("pool_connections_closed_total", closed, "peer")],
  closedByStop: [total("pool_connections_closed_total", closed, "stop")],
  closedByMessageLimit: [total("pool_connections_closed_total", closed, "messages")],
  interruptedByDrain: [total("pool_connections_closed_total", closed, "drain")],
  spawned: [total("pool_workers_spawned_total", "Workers spawned")],
  retired: [total("pool_workers_retired_total", "Workers retired")]
}

/** The histograms of seconds: per message, and per put that waited in the queue (admitted or not). */
const histograms: ReadonlyArray<{
  readonly name: string
  readonly description: string
  readonly read: (state: ManagerState) => DurationHistogram
}> = [
  {
    name: "pool_callback_duration_seconds",
    description: "Time the callback took per message",
    read: (state) => state.callbackDuration
  },
  {
    name: "pool_queue_wait_seconds",
    description: "Time each put that queued waited for a worker, admitted or not (queue policy)",
    read: (state) => state.queueWait
  }
]

const asNumber = (value: number | boolean): number => (typeof value === "boolean" ? (value ? 1 : 0) : value)

/**
 * Registers every series of the manager in the context's `MetricRegistry`
 * until `scope` closes.
 */
export const register = (state: ManagerState, scope: Scope.Scope): Effect.Effect<void> =>
  Effect.contextWith((context) => {
    const registrations: Array<Metric.Registration> = []
    const add = (series: Series, read: () => number) => {
      const options =
        series.reason === undefined
          ? { description: series.description }
          : { description: series.description, attributes: { reason: series.reason } }
      registrations.push(
        series.kind === "gauge"
          ? Metric.registerUnsafe(Metric.gauge(series.name, options), context, {
              get: () => ({ value: read() }),
              update: () => {},
              modify: () => {}
            })
          : Metric.registerUnsafe(Metric.counter(series.name, options), context, {
              get: () => ({ count: read(), incremental: true }),
              update: () => {},
              modify: () => {}
            })
      )
    }
    for (const key of Object.keys(table) as Array<keyof PoolStats>) {
      for (const series of table[key]) add(series, () => asNumber(Stats.read(state, key)))
    }
    add(gauge("pool_workers_min", "Configured minWorkersCount"), () => Ref.getUnsafe(state.config).minWorkersCount)
    add(
      gauge("pool_workers_max", "Configured maxWorkersCount (0 = unlimited)"),
      () => Ref.getUnsafe(state.config).maxWorkersCount
    )
    for (const histogram of histograms) {
      registrations.push(
        Metric.registerUnsafe(
          Metric.histogram(histogram.name, { description: histogram.description, boundaries: durationBoundaries }),
          context,
          { get: histogram.read(state).state, update: () => {}, modify: () => {} }
        )
      )
    }
    return Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        for (const registration of registrations) registration.remove()
      })
    )
  })
