/**
 * `/stats.json` under `--processes`: the processes' snapshots added up, with
 * a row per process (one that does not answer has a row without stats).
 */

import { assert, describe, it } from "@effect/vitest"
import { ManagerConfig } from "@pool-manager/core"
import { Effect } from "effect"
import type { NodeStatusPage } from "../src/index.ts"
import { aggregate } from "../src/internal/clusterStatus.ts"

const zero = {
  running: true,
  workers: 0,
  busy: 0,
  idle: 0,
  accepted: 0,
  waiting: 0,
  rejected: 0,
  rejectedByAddress: 0,
  queueTimeouts: 0,
  messages: 0,
  bytesRead: 0,
  bytesWritten: 0,
  callbackFailures: 0,
  closedByDeadline: 0,
  closedBySize: 0,
  closedByPeer: 0,
  closedByStop: 0,
  closedByMessageLimit: 0,
  interruptedByDrain: 0,
  spawned: 0,
  retired: 0
}

const snapshot = (stats: Partial<typeof zero>, config: ManagerConfig.Input): NodeStatusPage.Snapshot => ({
  time: 1,
  stats: { ...zero, ...stats } as unknown as NodeStatusPage.Snapshot["stats"],
  config: ManagerConfig.toJson(Effect.runSync(ManagerConfig.make(config)))
})

describe("NodeStatusPage with --processes", () => {
  it("adds the processes' stats and worker bounds up, with a row per process", () => {
    const one = snapshot({ busy: 2, workers: 3, accepted: 10 }, { minWorkersCount: 1, maxWorkersCount: 4 })
    const two = snapshot(
      { busy: 1, workers: 1, accepted: 5, running: false },
      { minWorkersCount: 1, maxWorkersCount: 4 }
    )
    const all = aggregate(
      [
        [1, one],
        [2, two],
        [3, undefined]
      ],
      3,
      42
    )!
    assert.strictEqual(all.time, 42)
    assert.deepStrictEqual([all.stats.busy, all.stats.workers, all.stats.accepted, all.stats.running], [3, 4, 15, true])
    assert.deepStrictEqual([all.config.minWorkersCount, all.config.maxWorkersCount], [2, 8])
    assert.deepStrictEqual(
      all.processes!.map((row) => [row.process, row.stats?.busy]),
      [
        [1, 2],
        [2, 1],
        [3, undefined]
      ]
    )
    // One process without a limit: together, no limit (0).
    const unlimited = aggregate(
      [
        [1, one],
        [2, snapshot({}, { maxWorkersCount: 0 })]
      ],
      2,
      1
    )!
    assert.strictEqual(unlimited.config.maxWorkersCount, 0)
    // Nobody answered yet: 503 "starting".
    assert.isUndefined(aggregate([[1, undefined]], 2, 1))
  })
})
