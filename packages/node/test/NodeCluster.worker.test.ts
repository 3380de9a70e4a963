/**
 * A cluster worker's side of the IPC requests (`NodeCluster.answerScrapes`
 * and the status answers), in the test process: the listener each installs
 * on `process` is called directly with the primary's requests, and the
 * replies `process.send` is given are recorded (the test runner's own
 * messages on that channel pass through untouched). Each answers its own
 * requests with the same id, ignores every other message, and stops
 * listening when its scope closes. NodeCluster.test.ts runs real workers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Metric, Scope } from "effect"
import { NodeCluster, type NodeStatusPage } from "../src/index.ts"
import * as ClusterStatus from "../src/internal/clusterStatus.ts"
import { recordSends } from "./utils/sends.ts"
import { until } from "./utils/socketPair.ts"

/** Runs `install` in a scope of its own; the `message` listener it added, and that scope. */
const installed = <E>(install: Effect.Effect<void, E, Scope.Scope>) =>
  Effect.gen(function* () {
    const before = process.listeners("message")
    const scope = yield* Scope.make()
    yield* Scope.provide(install, scope)
    const added = process.listeners("message").filter((listener) => !before.includes(listener))
    assert.strictEqual(added.length, 1, "one message listener installed")
    return { listener: added[0] as (message: unknown) => void, scope, before }
  })

const snapshot = { takenAt: 1 } as unknown as NodeStatusPage.Snapshot

describe("NodeCluster worker", () => {
  it.live("answers each scrape with this process's metrics and whether it runs, under the request's id", () =>
    Effect.gen(function* () {
      const sent = yield* recordSends
      yield* Metric.update(Metric.counter("cluster_worker_test_total", { description: "a test's own series" }), 3)
      let running = true
      const { listener, scope, before } = yield* installed(NodeCluster.answerScrapes(Effect.sync(() => running)))
      listener({ type: "pool-manager:scrape", id: 4 })
      yield* until(() => sent.length === 1, "the reply to scrape 4")
      assert.strictEqual(sent[0]?.type, "pool-manager:scrape-reply")
      assert.strictEqual(sent[0]?.id, 4)
      assert.strictEqual(sent[0]?.running, true)
      assert.include(String(sent[0]?.metrics), "cluster_worker_test_total 3")

      // Not its requests: no reply.
      listener({ type: "pool-manager:status", id: 5 })
      listener({ type: "pool-manager:scrape", id: "5" })
      listener({ type: "pool-manager:scrape" })
      listener(null)
      listener("pool-manager:scrape")
      running = false
      listener({ type: "pool-manager:scrape", id: 6 })
      yield* until(() => sent.length >= 2, "the reply to scrape 6")
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(
        sent.map((each) => [each.id, each.running]),
        [
          [4, true],
          [6, false]
        ]
      )
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(process.listeners("message"), before)
    }).pipe(Effect.scoped)
  )

  it.live("answers each status request with the snapshot, under the request's id", () =>
    Effect.gen(function* () {
      const sent = yield* recordSends
      let taken: NodeStatusPage.Snapshot | undefined = snapshot
      const { listener, scope, before } = yield* installed(ClusterStatus.answer(Effect.sync(() => taken)))
      listener({ type: "pool-manager:status", id: 0 })
      listener({ type: "pool-manager:scrape", id: 1 })
      listener({ type: "pool-manager:status", id: "2" })
      listener(undefined)
      yield* until(() => sent.length === 1, "the reply to status 0")
      taken = undefined
      listener({ type: "pool-manager:status", id: 3 })
      yield* until(() => sent.length >= 2, "two status replies")
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(sent, [
        { type: "pool-manager:status-reply", id: 0, snapshot },
        { type: "pool-manager:status-reply", id: 3, snapshot: undefined }
      ])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(process.listeners("message"), before)
    }).pipe(Effect.scoped)
  )
})
