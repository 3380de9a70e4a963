/**
 * The metrics server's routes as an HTTP client sees them, in-process on a
 * real loopback port: each route's status, body, `content-type` and
 * `cache-control`; a query string ignored; 404 naming the routes there are
 * (with and without a `status`); 405 with `allow` for a method other than
 * GET and HEAD; `url` of an address. And the header deadline around a
 * request: a slow answer is not cut by it, an idle keep-alive connection is
 * closed by the next one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { NodeMetricsServer, type NodeStatusPage } from "../src/index.ts"
import { connect, portOf } from "./utils/client.ts"
import { until } from "./utils/socketPair.ts"

const healthy = Effect.succeed({ healthy: true, detail: "ok" })

/** One request with `method`: its status, body and the two headers the routes set. */
const ask = (url: string, method = "GET") =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, { method, signal: AbortSignal.timeout(5000) })
    return {
      status: response.status,
      body: await response.text(),
      type: response.headers.get("content-type"),
      cache: response.headers.get("cache-control"),
      allow: response.headers.get("allow")
    }
  })

const text = "text/plain; charset=utf-8"

describe("NodeMetricsServer routes", () => {
  it.live("answers each route with its body and headers; 404 names the routes, 405 says which methods", () =>
    Effect.gen(function* () {
      let healthyNow = true
      const plain = yield* NodeMetricsServer.make({
        port: 0,
        metrics: Effect.succeed("pool_up 1\n"),
        health: Effect.sync(() => ({ healthy: healthyNow, detail: healthyNow ? "ok" : "draining" }))
      })
      const url = NodeMetricsServer.url(plain.address)
      assert.deepInclude(yield* ask(`${url}/metrics`), {
        status: 200,
        body: "pool_up 1\n",
        type: NodeMetricsServer.contentType
      })
      assert.strictEqual(NodeMetricsServer.contentType, "text/plain; version=0.0.4; charset=utf-8")
      assert.deepInclude(yield* ask(`${url}/healthz?from=probe`), { status: 200, body: "ok\n", type: text })
      healthyNow = false
      assert.deepInclude(yield* ask(`${url}/healthz`), { status: 503, body: "draining\n", type: text })
      assert.deepInclude(yield* ask(`${url}/healthz`, "HEAD"), { status: 503, body: "" })
      healthyNow = true
      assert.deepInclude(yield* ask(`${url}/metrics`, "HEAD"), { status: 200, body: "" })
      assert.deepInclude(yield* ask(`${url}/other`), {
        status: 404,
        body: "not found: try /metrics or /healthz\n",
        type: text
      })
      assert.deepInclude(yield* ask(`${url}/`), { status: 404, body: "not found: try /metrics or /healthz\n" })
      for (const method of ["POST", "PUT", "DELETE"]) {
        assert.deepInclude(
          yield* ask(`${url}/healthz`, method),
          { status: 405, body: "method not allowed\n", allow: "GET, HEAD" },
          method
        )
      }
      // An unknown path is unknown whatever the method.
      assert.strictEqual((yield* ask(`${url}/other`, "POST")).status, 404)

      const snapshot = { time: 1 } as unknown as NodeStatusPage.Snapshot
      const withStatus = yield* NodeMetricsServer.make({ port: 0, health: healthy, status: Effect.succeed(snapshot) })
      const statusUrl = NodeMetricsServer.url(withStatus.address)
      const page = yield* ask(`${statusUrl}/`)
      assert.deepInclude(page, { status: 200, type: "text/html; charset=utf-8", cache: "no-cache" })
      assert.match(page.body, /^<!doctype html>/)
      assert.deepInclude(yield* ask(`${statusUrl}/stats.json`), {
        status: 200,
        body: '{"time":1}',
        type: "application/json",
        cache: "no-store"
      })
      assert.deepInclude(yield* ask(`${statusUrl}/nope`), {
        status: 404,
        body: "not found: try / or /stats.json or /metrics or /healthz\n"
      })
      assert.strictEqual((yield* ask(`${statusUrl}/stats.json`, "POST")).status, 405)
    }).pipe(Effect.scoped)
  )

  it("url: http:// and host:port for a TCP address, unix: and the path for a unix socket", () => {
    const inet = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 9464)
    assert.strictEqual(NodeMetricsServer.url(inet), "http://127.0.0.1:9464")
    assert.strictEqual(NodeMetricsServer.url(NetAddress.unixPathAddress("/run/pool.sock")), "unix:/run/pool.sock")
  })

  it.live(
    "the header deadline stops once a request's headers are in, and starts again when its answer is sent",
    () =>
      Effect.gen(function* () {
        // An answer slower than the deadline: a deadline still running would cut it.
        const server = yield* NodeMetricsServer.make({
          port: 0,
          health: Effect.as(Effect.sleep("700 millis"), { healthy: true, detail: "ok" }),
          headersTimeout: "400 millis"
        })
        const client = yield* connect(portOf(server.address))
        yield* client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        yield* until(() => client.received().endsWith("\r\n\r\nok\n"), "the slow answer", "3 seconds")
        assert.match(client.received(), /^HTTP\/1\.1 200 OK\r\n/)
        // Idle on a keep-alive connection: closed by the next deadline, well before Node's 5 s keep-alive timeout.
        const answered = Date.now()
        yield* client.closed(2500)
        assert.isAtLeast(Date.now() - answered, 300)
      }).pipe(Effect.scoped),
    15_000
  )
})
