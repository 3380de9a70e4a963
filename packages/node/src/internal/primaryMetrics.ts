/**
 * The series of `NodeCluster`'s primary itself, before the workers' on its
 * `/metrics`: `pool_processes` (configured), `pool_process_up{process}` (1
 * if the process answered this scrape) and
 * `pool_process_restarts_total{process}`.
 *
 * They are Effect metrics formatted by Effect's `PrometheusMetrics`, like
 * every worker's, rather than text written by hand: the workers' texts are
 * only merged (`clusterScrape.ts`'s `aggregate`, which labels them with
 * `process`), never rewritten. The primary's series live in a registry of
 * their own, made per cluster: a program that runs the primary keeps its own
 * registry to itself, and two clusters share nothing. Values are read when a
 * scrape formats them (gauges and counters backed by a `get`).
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"

/** What the primary's series read at each scrape. */
export interface Source {
  /** The processes configured (`--processes`); each is numbered 1..processes. */
  readonly processes: number
  /** How many times process `number` was replaced. */
  readonly restarts: (number: number) => number
}

/**
 * The primary's series for `source`: a function of the processes that
 * answered a scrape to the text of those series (Prometheus's text format,
 * ending with a newline).
 */
export const make = (source: Source): ((answered: Iterable<number>) => string) => {
  const context = Context.make(Metric.MetricRegistry, new Map())
  let up: ReadonlySet<number> = new Set()
  const numbers = Array.from({ length: source.processes }, (_, i) => i + 1)
  const ignore = () => {}
  const gauge = (name: string, description: string, value: () => number, attributes?: Metric.Metric.Attributes) =>
    Metric.registerUnsafe(Metric.gauge(name, { description, attributes }), context, {
      get: () => ({ value: value() }),
      update: ignore,
      modify: ignore
    })
  // Registered in the order the text lists them.
  gauge("pool_processes", "Server processes configured (--processes)", () => source.processes)
  for (const number of numbers) {
    gauge("pool_process_up", "1 if the process answered this scrape", () => (up.has(number) ? 1 : 0), {
      process: String(number)
    })
  }
  for (const number of numbers) {
    Metric.registerUnsafe(
      Metric.counter("pool_process_restarts_total", {
        description: "Processes replaced after they exited, by process number",
        attributes: { process: String(number) }
      }),
      context,
      { get: () => ({ count: source.restarts(number), incremental: true }), update: ignore, modify: ignore }
    )
  }
  return (answered) => {
    up = new Set(answered)
    return PrometheusMetrics.formatUnsafe(context)
  }
}
