/**
 * The cap on sockets still pending (a PROXY header or a TLS handshake not yet
 * done) that `NodeTcpServer` enforces with `maxPendingConnections`, in this
 * process over real loopback sockets: what counts, what frees a place, and
 * how a socket over the cap is refused and reported.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Pending from "../src/internal/pending.ts"
import { socketPair, until } from "./utils/socketPair.ts"

const rejectedMetric = Effect.map(Metric.snapshot, (snapshots) =>
  snapshots.find(
    (snapshot) => snapshot.id === "pool_connections_rejected_total" && snapshot.attributes?.reason === "pending"
  )
)

describe("NodeTcpServer pending connections", () => {
  it.live("counts sockets up to the cap, refuses and destroys the next, and reports it", () =>
    Effect.gen(function* () {
      const pending = yield* Pending.make(2)
      const [a, b, c] = [yield* socketPair(), yield* socketPair(), yield* socketPair()]
      assert.isTrue(pending.enter(a.server))
      // The same socket again takes no second place.
      assert.isTrue(pending.enter(a.server))
      assert.isTrue(pending.enter(b.server))
      assert.isFalse(pending.enter(c.server))
      assert.isTrue(c.server.destroyed)
      assert.strictEqual(pending.rejected(), 1)
      assert.isTrue(pending.wasRejected(c.server))
      assert.isFalse(pending.wasRejected(a.server))
      assert.isFalse(pending.wasRejected(undefined))
      const metric = yield* rejectedMetric
      assert.strictEqual(metric?.description, "Connections refused by put, by reason")
      assert.deepInclude(metric?.state, { count: 1 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.live("a socket that leaves, or closes, frees its place", () =>
    Effect.gen(function* () {
      const pending = yield* Pending.make(1)
      const [a, b, c] = [yield* socketPair(), yield* socketPair(), yield* socketPair()]
      assert.isTrue(pending.enter(a.server))
      // At the cap, the socket already counted is still in.
      assert.isTrue(pending.enter(a.server))
      assert.isFalse(a.server.destroyed)
      pending.leave(undefined)
      pending.leave(a.server)
      assert.isTrue(pending.enter(b.server))
      let closed = false
      b.server.once("close", () => {
        closed = true
      })
      b.server.destroy()
      yield* until(() => closed, "the socket to close")
      assert.isTrue(pending.enter(c.server))
      assert.strictEqual(pending.rejected(), 0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
