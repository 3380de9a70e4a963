/**
 * `deploy/grafana-dashboard.json` against a real `/metrics`: every metric a
 * panel queries must be in the scrape of a `pool-manager` of two processes
 * (`--processes 2`) that served connections, with every label the query
 * selects or groups by, and the panel of workers against min and max must add
 * the processes' bounds up as it adds their workers up. Only
 * the labels Prometheus itself adds when it scrapes (`instance`, `job`) are
 * not expected in the text. A renamed metric or label breaks this test
 * instead of leaving an empty panel.
 */

import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, get, parsePrometheus, type Sample, spawnNode } from "./utils/cliProcess.ts"

interface Panel {
  readonly id: number
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string; readonly legendFormat: string }>
}

const dashboard = JSON.parse(
  Fs.readFileSync(fileURLToPath(new URL("../../../deploy/grafana-dashboard.json", import.meta.url)), "utf8")
) as {
  readonly panels: ReadonlyArray<Panel>
  readonly templating: { readonly list: ReadonlyArray<{ query: unknown }> }
}

/** Labels that Prometheus attaches to every series it scrapes. */
const targetLabels = new Set(["instance", "job"])
/** PromQL words that may stand where a metric name could. */
const promql = new Set([
  "by",
  "without",
  "sum",
  "max",
  "min",
  "count",
  "time",
  "rate",
  "histogram_quantile",
  "label_values"
])

/** The metric names a PromQL expression reads, and the labels it matches on or groups by. */
const references = (expr: string) => {
  const metrics = new Set<string>()
  for (const [, name] of expr.matchAll(/\b((?:pool|process|nodejs)_[a-z0-9_]+)\b/g)) metrics.add(name!)
  const labels = new Set<string>()
  for (const [, inside] of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const [, label] of inside!.matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)/g)) labels.add(label!)
  }
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list!.split(",")) labels.add(label.trim())
  }
  for (const [, inside] of expr.matchAll(/label_values\(\s*[a-z_]+\s*,\s*([a-z_]+)\s*\)/g)) labels.add(inside!)
  return { metrics, labels }
}

/** The value of `sum|max|min by (instance) (metric{instance=~"$instance"})` over one instance's samples. */
const evaluate = (expr: string, samples: ReadonlyArray<Sample>): number => {
  const match = /^(sum|max|min) by \(instance\) \(([a-z_]+)\{instance=~"\$instance"\}\)$/.exec(expr)
  if (match === null) throw new Error(`not an aggregation this test evaluates: ${expr}`)
  const values = samples.filter((sample) => sample.name === match[2]).map((sample) => sample.value)
  assert.isAbove(values.length, 0, `${match[2]} in /metrics`)
  return match[1] === "sum"
    ? values.reduce((a, b) => a + b, 0)
    : match[1] === "max"
      ? Math.max(...values)
      : Math.min(...values)
}

describe("deploy/grafana-dashboard.json", () => {
  it("is a dashboard with unique panel ids, each panel with a query", () => {
    const ids = dashboard.panels.map((panel) => panel.id)
    assert.strictEqual(new Set(ids).size, ids.length)
    for (const panel of dashboard.panels) assert.isAbove(panel.targets?.length ?? 0, 0, panel.title)
    for (const word of promql) assert.notInclude([...references(`${word}(pool_x)`).metrics], word)
  })

  it.live(
    "queries only metrics and labels that a real /metrics has",
    () =>
      Effect.gen(function* () {
        // The primary hands connections over in turn, so three held connections fit two processes of two workers.
        const child = yield* spawnNode([
          bin,
          ...["--port", "0", "--metrics-port", "0", "--max-workers", "2", "--min-workers", "1"],
          ...["--clients-deadline", "60s", "--processes", "2", "--cluster-mode", "handoff"]
        ])
        const port = Number((yield* child.waitFor(/primary: 2 processes listening on 127\.0\.0\.1:(\d+) /))[1])
        const metricsUrl = (yield* child.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!
        for (let i = 0; i < 3; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
        }
        const { status, body } = yield* get(`${metricsUrl}/metrics`)
        assert.strictEqual(status, 200)
        const samples = parsePrometheus(body)
        const labelsOf = new Map<string, Set<string>>()
        for (const sample of samples) {
          const labels = labelsOf.get(sample.name) ?? new Set<string>()
          for (const label of Object.keys(sample.labels)) labels.add(label)
          labelsOf.set(sample.name, labels)
        }

        const queries = [
          ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => [panel.title, target.expr])),
          ...dashboard.templating.list.flatMap((variable) =>
            typeof variable.query === "object" && variable.query !== null && "query" in variable.query
              ? [["variable", String(variable.query.query)]]
              : []
          )
        ]
        let checked = 0
        for (const [title, expr] of queries) {
          const { metrics, labels } = references(expr!)
          assert.isAbove(metrics.size, 0, `${title}: ${expr} reads no pool metric`)
          for (const metric of metrics) {
            const present = labelsOf.get(metric)
            assert.isDefined(present, `${title}: ${metric} is not in /metrics`)
            for (const label of labels) {
              if (targetLabels.has(label)) continue
              assert.isTrue(present!.has(label), `${title}: ${metric} has no label ${label} in /metrics`)
            }
            checked++
          }
        }
        assert.isAtLeast(checked, 30)
        // Every process reports the new series under its own `process` label.
        for (const name of [
          "process_resident_memory_bytes",
          "process_open_fds",
          "process_max_fds",
          "process_cpu_seconds_total",
          "nodejs_eventloop_lag_seconds",
          "pool_build_info",
          "pool_config_last_reload_successful",
          "pool_config_last_reload_success_timestamp_seconds"
        ]) {
          assert.sameMembers(
            samples.filter((sample) => sample.name === name).map((sample) => sample.labels.process),
            ["1", "2"],
            name
          )
        }

        // Workers against min and max: the capacity of the two processes, 2 × 2, above the 3 workers held.
        const panel = dashboard.panels.find((candidate) => candidate.title === "Workers against min and max")!
        const value = (legend: string) =>
          evaluate(panel.targets!.find((target) => target.legendFormat.startsWith(legend))!.expr, samples)
        assert.strictEqual(value("workers"), 3)
        assert.strictEqual(value("busy"), 3)
        assert.strictEqual(value("max"), 4)
        assert.strictEqual(value("min"), 2)
      }).pipe(Effect.scoped),
    30_000
  )
})
