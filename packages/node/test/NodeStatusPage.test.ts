/**
 * The status page's routes on the metrics server, in-process: `/` serves the
 * self-contained document, `/stats.json` a snapshot that follows the pool
 * (busy rises while a client holds a connection and falls after), 503 before
 * there is a pool, and neither route without a `status`. The page itself is
 * exercised in a real browser by `e2e/browser/statusPage.test.ts`.
 */

import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Effect, Layer, Metric } from "effect"
import { NodeMetricsServer, NodeStatusPage, NodeTcpServer } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { get } from "./utils/cliProcess.ts"

const healthy = Effect.succeed({ healthy: true, detail: "ok" })

const stats = (url: string) =>
  Effect.map(get(`${url}/stats.json`), ({ status, body }) => {
    assert.strictEqual(status, 200, body)
    return JSON.parse(body) as NodeStatusPage.Snapshot
  })

describe("NodeStatusPage", () => {
  it.live("serves the page and a stats.json that follows the pool", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.PoolManager
      const tcp = yield* NodeTcpServer.NodeTcpServer
      const server = yield* NodeMetricsServer.make({
        port: 0,
        health: healthy,
        status: NodeStatusPage.snapshot(manager)
      })
      const url = NodeMetricsServer.url(server.address)

      const page = yield* get(`${url}/`)
      assert.strictEqual(page.status, 200)
      assert.match(page.body, /^<!doctype html>/)
      assert.notMatch(page.body, /<script src=|<link rel="stylesheet"|https?:\/\//, "no external resource")
      for (const id of ["workers", "busy", "idle", "waiting", "workersChart", "ratesChart", "queueChart", "config"]) {
        assert.include(page.body, `id="${id}"`)
      }

      const before = yield* stats(url)
      assert.strictEqual(before.stats.busy, 0)
      assert.strictEqual(before.config.maxWorkersCount, 3)
      assert.strictEqual(before.config.clientsDeadline, 3000, "durations in milliseconds")
      const port = "port" in tcp.address ? tcp.address.port : 0
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* connect(port)
          yield* connect(port)
          let busy = -1
          const deadline = Date.now() + 5000
          while (busy !== 2 && Date.now() < deadline) {
            busy = (yield* stats(url)).stats.busy
            if (busy !== 2) yield* Effect.sleep("20 millis")
          }
          assert.strictEqual(busy, 2, "two held connections are busy")
        })
      )
      let after = yield* stats(url)
      const deadline = Date.now() + 5000
      while (after.stats.busy !== 0 && Date.now() < deadline) {
        yield* Effect.sleep("20 millis")
        after = yield* stats(url)
      }
      assert.strictEqual(after.stats.busy, 0, "closed connections are no longer busy")
      assert.isAtLeast(after.stats.accepted, 2)
      assert.isAbove(after.time, before.time - 1)
    }).pipe(
      Effect.scoped,
      Effect.provide(
        NodeTcpServer.layer({ port: 0 }).pipe(
          Layer.provideMerge(PoolManager.layer({ maxWorkersCount: 3 }, (conn) => Effect.ignore(conn.write("OK"))))
        )
      ),
      Effect.provideService(Metric.MetricRegistry, new Map())
    )
  )

  it.live("answers 503 before there is a pool, and has no page without a status", () =>
    Effect.gen(function* () {
      const starting = yield* NodeMetricsServer.make({ port: 0, health: healthy, status: Effect.undefined })
      const startingUrl = NodeMetricsServer.url(starting.address)
      assert.deepStrictEqual(yield* get(`${startingUrl}/stats.json`), { status: 503, body: "starting\n" })
      assert.strictEqual((yield* get(`${startingUrl}/`)).status, 200)

      const plain = yield* NodeMetricsServer.make({ port: 0, health: healthy })
      const plainUrl = NodeMetricsServer.url(plain.address)
      assert.strictEqual((yield* get(`${plainUrl}/`)).status, 404)
      assert.strictEqual((yield* get(`${plainUrl}/stats.json`)).status, 404)
      assert.strictEqual((yield* get(`${plainUrl}/healthz`)).status, 200)
    }).pipe(Effect.scoped)
  )
})
