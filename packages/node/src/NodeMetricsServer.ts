/**
 * An HTTP endpoint for operators: `GET /metrics` answers the metrics in the
 * Prometheus text format (by default every series of the context's
 * `MetricRegistry`, which is where the `PoolManager` registers its own),
 * `GET /healthz` answers `200 ok` while the server is healthy and `503` with
 * the reason otherwise (e.g. while the pool drains), and, given a `status`,
 * `GET /` serves the live status page of `NodeStatusPage` and
 * `GET /stats.json` the snapshot it polls.
 *
 * Slow or idle clients cannot hold it: a client that has not sent its
 * headers within `headersTimeout` (10 seconds) is closed, and at most
 * `maxConnections` (256) are open at once.
 *
 * It is Effect's HTTP server on `@effect/platform-node` (`NodeHttpServer`):
 * that package is already a dependency, its server is scoped (closed
 * gracefully with the scope), and a handler runs in the context it was
 * started in, so `PrometheusMetrics.format` reads the same registry as the
 * pool. Two routes need no router: the handler matches the path itself.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type * as Scope from "effect/Scope"
import * as NodeStatusPage from "./NodeStatusPage.ts"
import { ListenError } from "./NodeTcpServer.ts"

/**
 * What `/healthz` reports: `healthy` selects 200 or 503, `detail` is the body.
 *
 * @category models
 * @since 0.1.0
 */
export interface Health {
  readonly healthy: boolean
  readonly detail: string
}

/**
 * Options for `make` and `layer`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1: metrics are not for the whole network unless asked). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one. */
  readonly port: number
  /** The `/metrics` body (default `PrometheusMetrics.format()` in the server's context). */
  readonly metrics?: Effect.Effect<string> | undefined
  /** The `/healthz` answer, computed per request. */
  readonly health: Effect.Effect<Health>
  /**
   * The `/stats.json` answer (`undefined` while there is no pool yet: 503).
   * Given, `/` serves the status page; left out, both answer 404.
   */
  readonly status?: Effect.Effect<NodeStatusPage.Snapshot | undefined> | undefined
  /**
   * Close a client that has not sent its request's headers within this long
   * (default 10 seconds; Node's own default holds one for a minute).
   */
  readonly headersTimeout?: Duration.Input | undefined
  /** Most connections open at once (default 256); more are closed as they arrive. */
  readonly maxConnections?: number | undefined
}

/**
 * The listening metrics server.
 *
 * @category services
 * @since 0.1.0
 */
export class NodeMetricsServer extends Context.Service<
  NodeMetricsServer,
  {
    /** The address the server is bound to (with the real port when 0 was asked for). */
    readonly address: NetAddress.SocketAddress
  }
>()("@pool-manager/node/NodeMetricsServer") {}

/**
 * The content type Prometheus expects for the text exposition format.
 *
 * @category constants
 * @since 0.1.0
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const text = (body: string, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "text/plain; charset=utf-8" })

const app = (options: Options) => {
  const metrics = options.metrics ?? PrometheusMetrics.format()
  const status = options.status
  const paths = status === undefined ? ["/metrics", "/healthz"] : ["/", "/stats.json", "/metrics", "/healthz"]
  const notFound = `not found: try ${paths.join(" or ")}\n`
  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0] ?? ""
    if (!paths.includes(path)) return text(notFound, 404)
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    if (path === "/metrics") return HttpServerResponse.text(yield* metrics, { contentType })
    if (path === "/healthz") {
      const health = yield* options.health
      return text(`${health.detail}\n`, health.healthy ? 200 : 503)
    }
    if (path === "/") {
      return HttpServerResponse.text(NodeStatusPage.document, {
        contentType: "text/html; charset=utf-8",
        headers: { "cache-control": "no-cache" }
      })
    }
    const snapshot = yield* status!
    if (snapshot === undefined) return text("starting\n", 503)
    return HttpServerResponse.text(JSON.stringify(snapshot), {
      contentType: "application/json",
      headers: { "cache-control": "no-store" }
    })
  })
}

/**
 * Listens on `host:port` and serves `/metrics` and `/healthz` until the scope
 * closes (then it stops accepting and closes idle keep-alive connections).
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeMetricsServer } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * // /metrics: the pool's series (it registers them in the context's registry);
 * // /healthz: 200 while the pool admits connections, 503 while it drains.
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.PoolManager
 *   const metrics = yield* NodeMetricsServer.make({
 *     port: 9464,
 *     health: Effect.map(manager.stats, ({ running }) => ({ healthy: running, detail: running ? "ok" : "stopping" }))
 *   })
 *   yield* Effect.log(`metrics at ${NodeMetricsServer.url(metrics.address)}/metrics`)
 *   return yield* Effect.never
 * }).pipe(
 *   Effect.scoped,
 *   Effect.provide(PoolManager.layer({ maxWorkersCount: 10 }, (conn) => conn.write("OK")))
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<NodeMetricsServer["Service"], ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const headersTimeout = Duration.toMillis(Duration.fromInputUnsafe(options.headersTimeout ?? "10 seconds"))
    // Slow clients must not hold the port an operator's probe needs: a cap on
    // connections, and a deadline for each request's headers. The deadline is
    // kept here: Node's `headersTimeout` only applies once a request began,
    // and not to a client that connects and sends nothing.
    const create = () => {
      const server = Http.createServer({ headersTimeout, requestTimeout: 2 * headersTimeout })
      server.maxConnections = options.maxConnections ?? 256
      const deadlines = new WeakMap<Net.Socket, NodeJS.Timeout>()
      const arm = (socket: Net.Socket) => {
        clearTimeout(deadlines.get(socket))
        const timer = setTimeout(() => socket.destroy(), headersTimeout)
        timer.unref()
        deadlines.set(socket, timer)
      }
      server.on("connection", (socket: Net.Socket) => {
        arm(socket)
        socket.once("close", () => clearTimeout(deadlines.get(socket)))
      })
      // Headers in: the request is answered; the next one on the connection gets its own deadline.
      server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
        clearTimeout(deadlines.get(request.socket))
        response.once("finish", () => arm(request.socket))
      })
      return server
    }
    const server = yield* NodeHttpServer.make(create, {
      host,
      port: options.port,
      // A scrape is short: do not hold a drain back for 20 seconds.
      gracefulShutdownTimeout: "1 second"
    }).pipe(Effect.mapError((error) => new ListenError({ address: `${host}:${options.port}`, cause: error.cause })))
    yield* server.serve(app(options))
    return NodeMetricsServer.of({ address: server.address })
  })

/**
 * `make` as a layer.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<NodeMetricsServer, ListenError> =>
  Layer.effect(NodeMetricsServer, make(options))

/**
 * The URL of an address, e.g. `http://127.0.0.1:9464`.
 *
 * @category utils
 * @since 0.1.0
 */
export const url = (address: NetAddress.SocketAddress): string =>
  NetAddress.isInetAddress(address) ? `http://${String(address)}` : `unix:${String(address)}`
