/**
 * What the primary makes of its processes' answers, without forking: the
 * merged Prometheus text in the cases NodeCluster.test.ts leaves out (empty
 * labels, a label value that looks like a comment, a family of several
 * series names, as a histogram's), and the status collector's summed
 * snapshot from workers that answer.
 */
import type { Worker } from "node:cluster"
import { EventEmitter } from "node:events"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeCluster, type NodeStatusPage } from "../src/index.ts"
import * as ClusterStatus from "../src/internal/clusterStatus.ts"

/** A worker answering each status request with `snapshot`. */
const statusWorker = (snapshot: NodeStatusPage.Snapshot) => {
  const emitter = new EventEmitter()
  return Object.assign(emitter, {
    isConnected: () => true,
    send: (request: { id: number }, _handle: unknown, callback: (error: Error | null) => void) => {
      callback(null)
      queueMicrotask(() => emitter.emit("message", { type: "pool-manager:status-reply", id: request.id, snapshot }))
      return true
    }
  }) as unknown as Worker
}

describe("NodeCluster merging", () => {
  it("a sample with empty labels gets the process label alone", () => {
    assert.strictEqual(
      NodeCluster.aggregate([{ process: 1, metrics: "# TYPE up gauge\nup{} 1\n" }]),
      '# TYPE up gauge\nup{process="1"} 1\n'
    )
  })

  it("a label value that reads like a comment is still a sample", () => {
    const metrics = '# TYPE pool_info gauge\npool_info{note="# HELP not a comment"} 1\n'
    assert.strictEqual(
      NodeCluster.aggregate([{ process: 2, metrics }]),
      '# TYPE pool_info gauge\npool_info{process="2",note="# HELP not a comment"} 1\n'
    )
  })

  it("a histogram's series stay under their family, process after process", () => {
    const histogram = (count: number) =>
      [
        "# HELP wait_seconds Waiting",
        "# TYPE wait_seconds histogram",
        `wait_seconds_bucket{le="+Inf"} ${count}`,
        `wait_seconds_sum ${count}`,
        `wait_seconds_count ${count}`,
        ""
      ].join("\n")
    assert.strictEqual(
      NodeCluster.aggregate([
        { process: 1, metrics: histogram(3) },
        { process: 2, metrics: histogram(4) }
      ]),
      [
        "# HELP wait_seconds Waiting",
        "# TYPE wait_seconds histogram",
        'wait_seconds_bucket{process="1",le="+Inf"} 3',
        'wait_seconds_sum{process="1"} 3',
        'wait_seconds_count{process="1"} 3',
        'wait_seconds_bucket{process="2",le="+Inf"} 4',
        'wait_seconds_sum{process="2"} 4',
        'wait_seconds_count{process="2"} 4',
        ""
      ].join("\n")
    )
  })

  it.effect("the status collector sums the snapshots of the workers that answer, a row per process", () =>
    Effect.gen(function* () {
      const snapshot = (busy: number) =>
        ({
          time: 1,
          stats: { running: true, busy },
          config: { minWorkersCount: 1, maxWorkersCount: 4 }
        }) as unknown as NodeStatusPage.Snapshot
      const collect = ClusterStatus.makeCollect()
      const summed = yield* collect(
        [
          [1, statusWorker(snapshot(2))],
          [3, statusWorker(snapshot(5))]
        ],
        3
      )
      assert.deepInclude(summed?.stats, { running: true, busy: 7 })
      assert.deepInclude(summed?.config, { minWorkersCount: 2, maxWorkersCount: 8 })
      assert.deepStrictEqual(
        (summed?.processes ?? []).map((row) => [row.process, row.stats === undefined ? "none" : "stats"]),
        [
          [1, "stats"],
          [2, "none"],
          [3, "stats"]
        ]
      )
    })
  )
})
