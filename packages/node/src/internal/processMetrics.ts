/**
 * The process's own series, next to the pool's on `/metrics`, named as
 * Prometheus's client libraries name them so existing dashboards and alerts
 * apply: memory (`process_resident_memory_bytes`), descriptors
 * (`process_open_fds` against `process_max_fds`, the soft `ulimit -n`), CPU
 * (`process_cpu_seconds_total`), start time, event-loop lag from
 * `perf_hooks.monitorEventLoopDelay` (`nodejs_eventloop_lag_seconds`, its
 * mean, with `_p99_` and `_max_` since the previous scrape), the build
 * (`pool_build_info{version,node}`) and whether the last config load worked
 * (`pool_config_last_reload_successful`,
 * `pool_config_last_reload_success_timestamp_seconds`).
 *
 * Every value is read when a scrape reads the registry (gauges backed by a
 * `get`), so nothing runs between scrapes but the event-loop monitor. Under
 * `--processes` each process registers its own, and the primary's merge
 * labels them with `process` like the pool's series. The descriptor series
 * read `/proc/self`, so they exist on Linux only.
 */
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as PerfHooks from "node:perf_hooks"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"

/**
 * The `@pool-manager/node` version, from its installed package.json (as the
 * bin reads it); `unknown` where there is none, as next to an application
 * bundled into one file without its node_modules.
 */
export const version = (): string => {
  try {
    return (createRequire(import.meta.url)("@pool-manager/node/package.json") as { version: string }).version
  } catch {
    return "unknown"
  }
}

/** Records the outcome of a config load; what the `pool_config_last_reload_*` series report. */
export interface ReloadStatus {
  readonly record: (successful: boolean) => void
}

const readMaxFds = (): number | undefined => {
  try {
    const line = Fs.readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((entry) => entry.startsWith("Max open files"))
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0]
    return soft === undefined ? undefined : soft === "unlimited" ? Infinity : Number(soft)
  } catch {
    return undefined
  }
}

const readOpenFds = (): number => {
  try {
    // The listing opens one descriptor of its own.
    return Math.max(0, Fs.readdirSync("/proc/self/fd").length - 1)
  } catch {
    return Number.NaN
  }
}

// The monitor's timer fires every `resolution` ms and records the whole
// interval, so the lag is what exceeds it.
const resolution = 10
const lagSeconds = (nanos: number): number =>
  Number.isFinite(nanos) ? Math.max(0, nanos / 1e6 - resolution) / 1000 : 0

/** The series `register` made, removed when its scope closes, and the context whose registry holds them. */
interface Registrations {
  readonly context: Context.Context<never>
  readonly list: Array<Metric.Registration>
}

const gauge = (
  registrations: Registrations,
  name: string,
  description: string,
  get: () => number,
  attributes?: Record<string, string>
): void => {
  registrations.list.push(
    Metric.registerUnsafe(
      Metric.gauge(name, attributes === undefined ? { description } : { description, attributes }),
      registrations.context,
      { get: () => ({ value: get() }), update: () => {}, modify: () => {} }
    )
  )
}

const counter = (registrations: Registrations, name: string, description: string, get: () => number): void => {
  registrations.list.push(
    Metric.registerUnsafe(Metric.counter(name, { description }), registrations.context, {
      get: () => ({ count: get(), incremental: true }),
      update: () => {},
      modify: () => {}
    })
  )
}

interface LagSample {
  readonly takenAt: number
  readonly mean: number
  readonly p99: number
  readonly max: number
}

// One sample of the lag per scrape (at most one a second), so the three series agree.
const makeLagSampler = (delay: PerfHooks.ELDHistogram): (() => LagSample) => {
  let lag: LagSample = { takenAt: 0, mean: 0, p99: 0, max: 0 }
  return () => {
    const now = Date.now()
    if (now - lag.takenAt >= 1000) {
      const seen = delay.count > 0
      lag = {
        takenAt: now,
        mean: seen ? lagSeconds(delay.mean) : 0,
        p99: seen ? lagSeconds(delay.percentile(99)) : 0,
        max: seen ? lagSeconds(delay.max) : 0
      }
      delay.reset()
    }
    return lag
  }
}

// Memory, CPU, start time, and the descriptors where /proc tells them.
const registerProcessSeries = (registrations: Registrations): void => {
  gauge(registrations, "process_resident_memory_bytes", "Resident memory size in bytes", () =>
    process.memoryUsage.rss()
  )
  counter(registrations, "process_cpu_seconds_total", "User and system CPU time spent in seconds", () => {
    const usage = process.cpuUsage()
    return (usage.user + usage.system) / 1e6
  })
  gauge(registrations, "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds", () =>
    Math.round(Date.now() / 1000 - process.uptime())
  )
  if (readMaxFds() !== undefined) {
    gauge(registrations, "process_open_fds", "Open file descriptors", readOpenFds)
    gauge(
      registrations,
      "process_max_fds",
      "Maximum open file descriptors (the soft limit, ulimit -n)",
      () => readMaxFds() ?? 0
    )
  }
}

const registerEventLoopSeries = (registrations: Registrations, sampleLag: () => LagSample): void => {
  gauge(
    registrations,
    "nodejs_eventloop_lag_seconds",
    "Mean event-loop delay since the previous scrape (perf_hooks.monitorEventLoopDelay)",
    () => sampleLag().mean
  )
  gauge(
    registrations,
    "nodejs_eventloop_lag_p99_seconds",
    "99th percentile of the event-loop delay since the previous scrape",
    () => sampleLag().p99
  )
  gauge(
    registrations,
    "nodejs_eventloop_lag_max_seconds",
    "Largest event-loop delay since the previous scrape",
    () => sampleLag().max
  )
}

/** The outcome of the last config load, as the `pool_config_last_reload_*` series report it. */
interface LastReload {
  successful: boolean
  /** When a load last succeeded, in seconds since the Unix epoch. */
  at: number
}

const registerBuildAndReloadSeries = (registrations: Registrations, reload: LastReload): void => {
  gauge(registrations, "pool_build_info", "Always 1; the labels name the build", () => 1, {
    version: version(),
    node: process.version
  })
  gauge(
    registrations,
    "pool_config_last_reload_successful",
    "1 if the last load of the config file (at start or on SIGHUP) succeeded, else 0",
    () => (reload.successful ? 1 : 0)
  )
  gauge(
    registrations,
    "pool_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully, in seconds since the Unix epoch",
    () => reload.at
  )
}

/**
 * Registers the series in the context's `MetricRegistry` until the scope
 * closes; the returned status records config loads (the start counts as a
 * successful one).
 */
export const register: Effect.Effect<ReloadStatus, never, Scope.Scope> = Effect.gen(function* () {
  const registrations: Registrations = { context: yield* Effect.context<never>(), list: [] }
  const scope = yield* Effect.scope
  const reload: LastReload = { successful: true, at: Date.now() / 1000 }
  const delay = PerfHooks.monitorEventLoopDelay({ resolution })
  delay.enable()
  // Registered in the order the text lists them.
  registerProcessSeries(registrations)
  registerEventLoopSeries(registrations, makeLagSampler(delay))
  registerBuildAndReloadSeries(registrations, reload)
  yield* Scope.addFinalizer(
    scope,
    Effect.sync(() => {
      delay.disable()
      for (const registration of registrations.list) registration.remove()
    })
  )
  return {
    record: (successful) => {
      reload.successful = successful
      if (successful) reload.at = Date.now() / 1000
    }
  }
})
