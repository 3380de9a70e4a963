/**
 * `deploy/grafana-dashboard.json` against a real `/metrics`: every metric a
 * panel queries must be in the scrape of a `pool-manager` that served and
 * refused connections, with every label the query selects or groups by. Only
 * the labels Prometheus itself adds when it scrapes (`instance`, `job`) are
 * not expected in the text. A renamed metric or label breaks this test
 * instead of leaving an empty panel.
 */

import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { fillPool } from "./utils/client.ts"
import { bin, get, parsePrometheus, spawnNode } from "./utils/cliProcess.ts"

interface Panel {
  readonly id: number
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
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
const promql = new Set(["by", "without", "sum", "max", "min", "rate", "histogram_quantile", "label_values"])

/** The metric names a PromQL expression reads, and the labels it matches on or groups by. */
const references = (expr: string) => {
  const metrics = new Set<string>()
  for (const [, name] of expr.matchAll(/\b(pool_[a-z_]+)\b/g)) metrics.add(name!)
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
        const child = yield* spawnNode([
          bin,
          ...["--port", "0", "--metrics-port", "0", "--max-workers", "2", "--clients-deadline", "60s"]
        ])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        const metricsUrl = (yield* child.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!
        // Two connections served and held, a third refused: every series has moved.
        yield* fillPool(port, 2)
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
        assert.isAtLeast(checked, 20)
      }).pipe(Effect.scoped),
    30_000
  )
})
