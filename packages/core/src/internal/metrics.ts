/**
 * The manager's metrics, as Effect `Metric` series.
 *
 * The hot path only bumps plain numbers in `Counters` (and one histogram
 * bucket per message); the series read them when somebody takes a snapshot
 * (`Metric.registerUnsafe` with a `get` hook). So metrics cost nothing per
 * event beyond an increment, and nothing at all when nobody reads them.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { Env } from "./state.ts"

/** Upper bounds of the callback duration histogram, in seconds. */
export const durationBoundaries: ReadonlyArray<number> = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
]

/** A fixed-bucket histogram of seconds, updated without allocation. */
export interface DurationHistogram {
  readonly observe: (seconds: number) => void
  readonly state: () => Metric.HistogramState
}

export const makeDurationHistogram = (): DurationHistogram => {
  const counts = new Float64Array(durationBoundaries.length + 1)
  let count = 0
  let sum = 0
  let min = Number.MAX_VALUE
  let max = -Number.MAX_VALUE
  return {
    observe(seconds) {
      let i = 0
      while (i < durationBoundaries.length && seconds > durationBoundaries[i]!) i++
      counts[i]!++
      count++
      sum += seconds
      if (seconds < min) min = seconds
      if (seconds > max) max = seconds
    },
    state() {
      let cumulative = 0
      const buckets = durationBoundaries.map((boundary, i): [number, number] => {
        cumulative += counts[i]!
        return [boundary, cumulative]
      })
      return { buckets, count, sum, min, max }
    }
  }
}

const counter = (name: string, description: string, attributes?: Record<string, string>) =>
  Metric.counter(name, attributes === undefined ? { description } : { description, attributes })

const gauge = (name: string, description: string) => Metric.gauge(name, { description })

/**
 * Registers every series of `env` in the context's `MetricRegistry` until
 * `scope` closes.
 */
export const register = (env: Env, scope: Scope.Scope): Effect.Effect<void> =>
  Effect.contextWith((context) => {
    const c = env.counters
    const registrations: Array<Metric.Registration> = []
    const count = (metric: Metric.Counter<number>, read: () => number) =>
      registrations.push(
        Metric.registerUnsafe(metric, context, {
          get: () => ({ count: read(), incremental: true }),
          update: () => {},
          modify: () => {}
        })
      )
    const value = (metric: Metric.Gauge<number>, read: () => number) =>
      registrations.push(
        Metric.registerUnsafe(metric, context, {
          get: () => ({ value: read() }),
          update: () => {},
          modify: () => {}
        })
      )
    const idle = () => env.idleCount()
    value(gauge("pool_workers", "Workers alive, busy or idle"), () => c.workers)
    value(gauge("pool_workers_busy", "Connections being served"), () => c.busy)
    value(gauge("pool_workers_idle", "Workers waiting for a connection"), idle)
    value(gauge("pool_workers_min", "Configured minWorkersCount"), () => Ref.getUnsafe(env.config).minWorkersCount)
    value(
      gauge("pool_workers_max", "Configured maxWorkersCount (0 = unlimited)"),
      () => Ref.getUnsafe(env.config).maxWorkersCount
    )
    value(gauge("pool_running", "1 while the manager admits connections"), () =>
      env.run !== undefined && !env.run.stopping ? 1 : 0
    )
    count(counter("pool_connections_accepted_total", "Connections admitted by put"), () => c.accepted)
    value(gauge("pool_connections_waiting", "Connections waiting for a worker (queue policy)"), () =>
      env.admission.waiting()
    )
    const refused = "Connections refused by put, by reason"
    count(counter("pool_connections_rejected_total", refused, { reason: "busy" }), () => c.rejected)
    count(counter("pool_connections_rejected_total", refused, { reason: "address" }), () => c.rejectedByAddress)
    count(counter("pool_queue_timeouts_total", "Connections refused after waiting queueTimeout"), () => c.queueTimeouts)
    const closed = "Connections closed by the pool, by reason"
    count(counter("pool_connections_closed_total", closed, { reason: "deadline" }), () => c.closedByDeadline)
    count(counter("pool_connections_closed_total", closed, { reason: "size" }), () => c.closedBySize)
    count(counter("pool_connections_closed_total", closed, { reason: "peer" }), () => c.closedByPeer)
    count(counter("pool_connections_closed_total", closed, { reason: "stop" }), () => c.closedByStop)
    count(counter("pool_connections_closed_total", closed, { reason: "messages" }), () => c.closedByMessageLimit)
    count(counter("pool_connections_closed_total", closed, { reason: "callback" }), () => c.callbackFailures)
    count(counter("pool_connections_closed_total", closed, { reason: "drain" }), () => c.interruptedByDrain)
    count(counter("pool_messages_total", "Messages handed to the callback"), () => c.messages)
    count(counter("pool_bytes_read_total", "Bytes of those messages"), () => c.bytesRead)
    count(counter("pool_bytes_written_total", "Bytes written to connections"), () => env.bytesWritten())
    count(counter("pool_callback_failures_total", "Callbacks that failed or died"), () => c.callbackFailures)
    count(counter("pool_workers_spawned_total", "Workers spawned"), () => c.spawned)
    count(counter("pool_workers_retired_total", "Workers retired"), () => c.retired)
    registrations.push(
      Metric.registerUnsafe(
        Metric.histogram("pool_callback_duration_seconds", {
          description: "Time the callback took per message",
          boundaries: durationBoundaries
        }),
        context,
        { get: env.callbackDuration.state, update: () => {}, modify: () => {} }
      )
    )
    return Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        for (const registration of registrations) registration.remove()
      })
    )
  })
