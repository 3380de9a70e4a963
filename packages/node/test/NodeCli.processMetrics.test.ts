/**
 * The process's own series (internal/processMetrics.ts), in this process:
 * registered in the context's registry in the order `/metrics` lists them and
 * removed with their scope, each value read at the scrape (memory, CPU, start
 * time, descriptors against the soft limit), the event-loop lag as one sample
 * per second shared by its three series, and the reload status.
 * NodeMetricsServer.process.test.ts checks the same series on the real command.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Metric, Scope } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as ProcessMetrics from "../src/internal/processMetrics.ts"
import { parsePrometheus, type Sample, select } from "./utils/cliProcess.ts"

const series = [
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_open_fds",
  "process_max_fds",
  "nodejs_eventloop_lag_seconds",
  "nodejs_eventloop_lag_p99_seconds",
  "nodejs_eventloop_lag_max_seconds",
  "pool_build_info",
  "pool_config_last_reload_successful",
  "pool_config_last_reload_success_timestamp_seconds"
]

const scrape = Effect.map(PrometheusMetrics.format(), parsePrometheus)

const sampleValue = (samples: ReadonlyArray<Sample>, name: string): number => {
  const found = select(samples, name)
  assert.strictEqual(found.length, 1, `one ${name} sample`)
  return found[0]!.value
}

/** The series registered in a scope of their own, with a registry of their own. */
const registered = <A, E>(use: (status: ProcessMetrics.ReloadStatus, scope: Scope.Closeable) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const status = yield* Scope.provide(ProcessMetrics.register, scope)
    return yield* Effect.ensuring(use(status, scope), Scope.close(scope, Exit.void))
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

/** Keeps the thread busy for `millis`: the event loop is blocked meanwhile, and CPU time is spent. */
const busyFor = (millis: number) =>
  Effect.sync(() => {
    const until = performance.now() + millis
    while (performance.now() < until) {
      // spinning on purpose
    }
  })

/** Spins until this process has spent `millis` more of CPU time (on a loaded machine that takes longer than `millis`). */
const spendCpu = (millis: number) =>
  Effect.sync(() => {
    const spent = () => {
      const usage = process.cpuUsage()
      return (usage.user + usage.system) / 1000
    }
    const until = spent() + millis
    while (spent() < until) {
      // spinning on purpose
    }
  })

describe("NodeCli process metrics", () => {
  it.live("registers every series in the order /metrics lists them, and removes them when its scope closes", () =>
    registered((_, scope) =>
      Effect.gen(function* () {
        const names = (yield* scrape).map((sample) => sample.name)
        assert.deepStrictEqual(names, series)
        // Each documented, and typed as Prometheus's client libraries type it (CPU time is a counter).
        const text = yield* PrometheusMetrics.format()
        for (const name of series) {
          assert.match(text, new RegExp(`^# HELP ${name} \\S.{10,}$`, "m"), `${name} has a description`)
          const type = name === "process_cpu_seconds_total" ? "counter" : "gauge"
          assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, "m"), `${name} is a ${type}`)
        }
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(yield* scrape, [])
      })
    )
  )

  it.live("reads memory, CPU, start time and descriptors when scraped", () =>
    registered(() =>
      Effect.gen(function* () {
        const before = yield* scrape
        assert.approximately(
          sampleValue(before, "process_resident_memory_bytes"),
          process.memoryUsage.rss(),
          64 * 1024 * 1024
        )
        assert.approximately(sampleValue(before, "process_start_time_seconds"), Date.now() / 1000 - process.uptime(), 2)
        // The soft limit, as a shell started from this process reports it.
        const soft = execFileSync("sh", ["-c", "ulimit -Sn"], { encoding: "utf8" }).trim()
        assert.strictEqual(sampleValue(before, "process_max_fds"), soft === "unlimited" ? Infinity : Number(soft))

        // The CPU time of this process in seconds, read between two readings of it.
        const cpuSeconds = () => {
          const usage = process.cpuUsage()
          return (usage.user + usage.system) / 1e6
        }
        const cpuBefore = cpuSeconds()
        const cpu = sampleValue(yield* scrape, "process_cpu_seconds_total")
        assert.isAtLeast(cpu, cpuBefore)
        assert.isAtMost(cpu, cpuSeconds())

        // Ten more descriptors held, and 100 ms of CPU spent, between two scrapes.
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "process-metrics-"))
        const fds = Array.from({ length: 10 }, (_, i) => Fs.openSync(Path.join(dir, `f${i}`), "w"))
        yield* spendCpu(100)
        const after = yield* scrape
        // This process's descriptors, as a listing of /proc/self/fd made in the same step counts them (less its own).
        assert.strictEqual(sampleValue(after, "process_open_fds"), Fs.readdirSync("/proc/self/fd").length - 1)
        for (const fd of fds) Fs.closeSync(fd)
        Fs.rmSync(dir, { recursive: true })
        assert.isAtLeast(sampleValue(after, "process_open_fds") - sampleValue(before, "process_open_fds"), 10)
        assert.isAtLeast(
          sampleValue(after, "process_cpu_seconds_total") - sampleValue(before, "process_cpu_seconds_total"),
          0.09
        )
      })
    )
  )

  it.live(
    "the event-loop lag: what blocked the loop since the previous sample, one sample a second for its three series",
    () =>
      registered(() =>
        Effect.gen(function* () {
          const lag = (samples: ReadonlyArray<Sample>) => ({
            mean: sampleValue(samples, "nodejs_eventloop_lag_seconds"),
            p99: sampleValue(samples, "nodejs_eventloop_lag_p99_seconds"),
            max: sampleValue(samples, "nodejs_eventloop_lag_max_seconds")
          })
          // The first scrape takes the first sample; the next one comes a second later.
          yield* scrape
          yield* Effect.sleep("1100 millis")
          yield* busyFor(200)
          // The monitor records the blocked interval when its timer fires after it.
          yield* Effect.sleep("30 millis")
          const blocked = lag(yield* scrape)
          assert.isAtLeast(blocked.max, 0.15, "the 200 ms the loop was blocked")
          assert.isAbove(blocked.mean, 0)
          assert.isAtMost(blocked.mean, blocked.max)
          assert.isAtMost(blocked.p99, blocked.max)
          // Within the second, the same sample: the three series agree with each other.
          yield* busyFor(50)
          assert.deepStrictEqual(lag(yield* scrape), blocked)
          // The next sample starts over: the block is no longer in it.
          yield* Effect.sleep("1100 millis")
          const calm = lag(yield* scrape)
          assert.isBelow(calm.max, 0.15)
          // Only what exceeds the monitor's 10 ms interval counts as lag: an idle loop's mean is near 0.
          assert.isBelow(calm.mean, 0.019)
        })
      )
  )

  it.live("the build's labels, and the reload status: a failed load keeps the time of the last good one", () =>
    registered((status) =>
      Effect.gen(function* () {
        const build = select(yield* scrape, "pool_build_info")
        assert.deepStrictEqual(
          build.map((sample) => [sample.value, sample.labels.version, sample.labels.node]),
          [[1, ProcessMetrics.version(), process.version]]
        )
        assert.notStrictEqual(ProcessMetrics.version(), "unknown")

        const reload = (samples: ReadonlyArray<Sample>) => [
          sampleValue(samples, "pool_config_last_reload_successful"),
          sampleValue(samples, "pool_config_last_reload_success_timestamp_seconds")
        ]
        const [startOk, startAt] = reload(yield* scrape)
        assert.strictEqual(startOk, 1, "the start counts as a successful load")
        assert.approximately(startAt!, Date.now() / 1000, 5)

        yield* Effect.sleep("20 millis")
        status.record(false)
        assert.deepStrictEqual(reload(yield* scrape), [0, startAt])

        yield* Effect.sleep("20 millis")
        status.record(true)
        const [ok, at] = reload(yield* scrape)
        assert.strictEqual(ok, 1)
        assert.isAbove(at!, startAt!)
        assert.approximately(at!, Date.now() / 1000, 5)
      })
    )
  )
})
