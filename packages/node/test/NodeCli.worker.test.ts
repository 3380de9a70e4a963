/**
 * `NodeCli.serve` in a cluster's process (internal/cliServe.ts), in the test
 * process made to look like worker 3 (`cluster.isWorker` and the process
 * number in the environment, both put back afterwards): it answers the
 * primary's scrapes (whether it runs, with its metrics) over IPC instead of
 * serving a metrics endpoint, and every line it logs carries `process` and
 * `pid`. The scrape listener is called directly and the reply taken from
 * `process.send`. NodeCluster.test.ts runs real workers.
 */
import Cluster from "node:cluster"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ClusterWorker from "../src/internal/clusterWorker.ts"
import { recordSends } from "./utils/sends.ts"
import { lineWith, startServe } from "./utils/serve.ts"
import { until } from "./utils/socketPair.ts"

/** node:cluster's module, whose `isWorker` the test sets (it is a plain property). */
const cluster = Cluster as { isWorker: boolean }

/** This process as worker `number` of a cluster, until the scope closes. */
const asWorker = (number: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = { isWorker: cluster.isWorker, env: process.env[ClusterWorker.processEnv] }
      cluster.isWorker = true
      process.env[ClusterWorker.processEnv] = String(number)
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        cluster.isWorker = saved.isWorker
        if (saved.env === undefined) delete process.env[ClusterWorker.processEnv]
        else process.env[ClusterWorker.processEnv] = saved.env
      })
  )

describe("NodeCli in a cluster's process", { timeout: 10_000 }, () => {
  it.live("answers the primary's scrapes that it runs, and its lines carry process and pid", () =>
    Effect.gen(function* () {
      yield* asWorker(3)
      const sent = yield* recordSends
      const replies = () => sent.filter((message) => message.type === "pool-manager:scrape-reply")
      const before = process.listeners("message")
      const served = yield* startServe({ metrics: { host: "127.0.0.1", port: 0 } }, { name: "tested" })
      const added = process.listeners("message").filter((listener) => !before.includes(listener))
      assert.isAtLeast(added.length, 1, "the worker listens to its primary")
      for (const listener of added) (listener as (message: unknown) => void)({ type: "pool-manager:scrape", id: 41 })
      yield* until(() => replies().length > 0, "the scrape's reply")
      assert.strictEqual(replies()[0]?.id, 41)
      assert.strictEqual(replies()[0]?.running, true)
      assert.typeOf(replies()[0]?.metrics, "string")

      const listening = lineWith(served.lines, " listening on ")
      assert.include(listening?.annotations, { process: 3, pid: process.pid })
      // The metrics go to the primary: no endpoint of its own.
      assert.isUndefined(lineWith(served.lines, "metrics at"), "no metrics endpoint")
      yield* served.stop
      assert.include(lineWith(served.lines, "tested stopped")?.annotations, { process: 3, pid: process.pid })
    }).pipe(Effect.scoped)
  )
})
