/**
 * The layer's guards, with real loopback sockets: connections not yet
 * admitted (waiting for a PROXY header, or in a TLS handshake) are capped by
 * `maxPendingConnections` and counted in
 * `pool_connections_rejected_total{reason="pending"}`, and one handed to the
 * pool no longer counts; repeated PROXY
 * rejections are logged a few at a time with a summary while their counter
 * stays exact; with mutual TLS the callback sees the verified client
 * certificate (`NodeTls.peerCertificate`; none for one the CA did not
 * sign), also behind a PROXY header.
 */
import * as Net from "node:net"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Context, Effect, Layer, Logger, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { NodeTcpServer, NodeTls } from "../src/index.ts"
import { certificate } from "./utils/certificate.ts"
import { connect, portOf } from "./utils/client.ts"
import { parsePrometheus, total } from "./utils/cliProcess.ts"
import { pki } from "./utils/pki.ts"
import { v1 } from "./utils/proxyHeaders.ts"

// Answers with the subject of the client's verified certificate, or "anonymous".
const whoAmI: PoolManager.Callback = (conn) =>
  Effect.ignore(conn.write(`${NodeTls.peerCertificate(conn)?.subject ?? "anonymous"}\n`))

const start = (options: NodeTcpServer.Options) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      NodeTcpServer.layer({ host: "127.0.0.1", port: 0, ...options }).pipe(
        Layer.provideMerge(PoolManager.layer({ maxWorkersCount: 4, clientsDeadline: "10 seconds" }, whoAmI))
      )
    )
    const server = Context.get(context, NodeTcpServer.NodeTcpServer)
    const metrics = Effect.map(PrometheusMetrics.format(), parsePrometheus)
    return { port: portOf(server.address), metrics }
  })

const tlsAsk = (port: number, options: Tls.ConnectionOptions, header?: Buffer) =>
  Effect.callback<string>((resume) => {
    // A PROXY header goes before the handshake: written on the TCP socket TLS then starts on.
    const raw = header === undefined ? undefined : Net.connect(port, "127.0.0.1")
    if (raw !== undefined && header !== undefined) raw.write(header)
    const socket = Tls.connect(
      { host: "127.0.0.1", port, servername: "localhost", ...options, ...(raw === undefined ? {} : { socket: raw }) },
      () => socket.write("HI!")
    )
    let reply = ""
    socket.on("data", (chunk) => {
      reply += chunk.toString()
      if (reply.endsWith("\n")) resume(Effect.succeed(reply))
    })
    socket.on("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(`error ${error.code}`)))
    socket.on("close", () => resume(Effect.succeed(reply === "" ? "closed" : reply)))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("10 seconds"))

describe("NodeTcpServer limits", () => {
  it.live(
    "closes connections over maxPendingConnections at once, waiting for a PROXY header or in a TLS handshake",
    () =>
      Effect.gen(function* () {
        const { issue, ca } = yield* pki
        const authority = ca("pending-ca")
        const server = issue(authority, "server", { server: true })
        for (const options of [
          { proxyProtocol: true },
          { tls: { key: server.key, cert: server.cert, handshakeTimeout: 3000 } }
        ] satisfies Array<NodeTcpServer.Options>) {
          const { port, metrics } = yield* start({ ...options, maxPendingConnections: 5 })
          // Eight silent connections: five wait, three are closed at once.
          const silent = yield* Effect.forEach(Array.from({ length: 8 }), () => connect(port))
          const closed = yield* Effect.forEach(
            silent,
            (client) => Effect.match(client.closed(800), { onFailure: () => false, onSuccess: () => true }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(closed.filter(Boolean).length, 3)
          assert.strictEqual(total(yield* metrics, "pool_connections_rejected_total", { reason: "pending" }), 3)
          // Once they leave, a client is served. (A TLS client that leaves mid-handshake, on a server
          // that allows half-open connections, holds its place until the handshake timeout.)
          for (const client of silent) client.socket.destroy()
          yield* Effect.sleep(options.proxyProtocol === true ? "100 millis" : "3500 millis")
          if (options.proxyProtocol === true) {
            const client = yield* connect(port)
            yield* client.send(Buffer.concat([v1("TCP4", ["192.0.2.1", "127.0.0.1", 5000, port]), Buffer.from("HI")]))
            assert.strictEqual(yield* client.receive(10), "anonymous\n")
          } else {
            assert.strictEqual(yield* tlsAsk(port, { ca: [authority.cert] }), "anonymous\n")
            const failed = (reason: string) =>
              Effect.map(metrics, (samples) => total(samples, "pool_tls_handshake_failures_total", { reason }))
            // The five that never finished their handshake timed out; the three closed over the cap are not failures.
            assert.deepStrictEqual([yield* failed("timeout"), yield* failed("reset")], [5, 0])
          }
        }
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    30_000
  )

  it.live(
    "a connection handed to the pool leaves its pending place: after its PROXY header, its handshake, or both",
    () =>
      Effect.gen(function* () {
        const { key, cert } = yield* certificate
        const header = (port: number) => v1("TCP4", ["192.0.2.1", "127.0.0.1", 5000, port])
        for (const options of [
          { proxyProtocol: true },
          { tls: { key, cert } },
          { proxyProtocol: true, tls: { key, cert } }
        ] satisfies Array<NodeTcpServer.Options>) {
          const { port } = yield* start({ ...options, maxPendingConnections: 1 })
          // Two clients one after the other, the first still connected (served, in the pool): both are served.
          for (const nth of ["first", "second"]) {
            const what = `${nth} client, ${Object.keys(options).join(" and ")}`
            if (options.tls === undefined) {
              const client = yield* connect(port)
              yield* client.send(Buffer.concat([header(port), Buffer.from("HI")]))
              assert.strictEqual(yield* client.receive(10), "anonymous\n", what)
            } else {
              const proxied = options.proxyProtocol === true ? header(port) : undefined
              assert.strictEqual(yield* tlsAsk(port, { ca: cert }, proxied), "anonymous\n", what)
            }
          }
        }
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    30_000
  )

  it.live(
    "logs repeated PROXY rejections a few at a time, then a summary; the counter counts them all",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const logger = Logger.make(({ message }) => {
          lines.push(String(Array.isArray(message) ? message.join(" ") : message))
        })
        const { port, metrics } = yield* start({ proxyProtocol: { trustedProxies: ["10.0.0.0/8"] } }).pipe(
          Effect.provide(Logger.layer([logger]))
        )
        yield* Effect.forEach(
          Array.from({ length: 30 }),
          () =>
            Effect.gen(function* () {
              const client = yield* connect(port)
              yield* client.closed(2000)
            }).pipe(Effect.scoped),
          { concurrency: 5 }
        )
        assert.strictEqual(total(yield* metrics, "pool_proxy_connections_rejected_total", { reason: "untrusted" }), 30)
        const rejections = () => lines.filter((line) => line.startsWith("PROXY protocol: closed a connection"))
        assert.strictEqual(rejections().length, 5)
        // The window is 10 seconds: then one line says how many were not logged.
        const deadline = Date.now() + 15_000
        while (!lines.some((line) => line.includes("not logged")) && Date.now() < deadline) {
          yield* Effect.sleep("100 millis")
        }
        assert.include(
          lines.find((line) => line.includes("not logged")),
          "PROXY protocol rejections: 25 more like this not logged in the last 10s"
        )
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    30_000
  )

  it.live(
    "gives the callback the verified client certificate, over TLS and over TLS behind a PROXY header",
    () =>
      Effect.gen(function* () {
        const { issue, ca } = yield* pki
        const authority = ca("peer-ca")
        const server = issue(authority, "server", { server: true })
        const client = issue(authority, "billing")
        const tls = { key: server.key, cert: server.cert, ca: [authority.cert] }
        const trust = { ca: [authority.cert] }
        const direct = yield* start({ tls, tlsClientAuth: "request" })
        assert.strictEqual(
          yield* tlsAsk(direct.port, { ...trust, key: client.key, cert: client.cert }),
          "CN=billing,O=pool-manager tests\n"
        )
        // request: a client without a certificate is admitted, anonymous.
        assert.strictEqual(yield* tlsAsk(direct.port, trust), "anonymous\n")
        // ... and so is one whose certificate the CA did not sign: the callback sees no certificate.
        const stranger = issue(ca("other-ca"), "stranger")
        assert.strictEqual(
          yield* tlsAsk(direct.port, { ...trust, key: stranger.key, cert: stranger.cert }),
          "anonymous\n"
        )
        // A name with an attribute given twice shows it once, its values joined by +.
        const team = issue(authority, "team", { subject: "/CN=team/OU=east/OU=west/O=pool-manager tests" })
        assert.strictEqual(
          yield* tlsAsk(direct.port, { ...trust, key: team.key, cert: team.cert }),
          "CN=team,OU=east+west,O=pool-manager tests\n"
        )
        const proxied = yield* start({ tls, tlsClientAuth: "require", proxyProtocol: true })
        const header = v1("TCP4", ["192.0.2.1", "127.0.0.1", 5000, proxied.port])
        assert.strictEqual(
          yield* tlsAsk(proxied.port, { ...trust, key: client.key, cert: client.cert }, header),
          "CN=billing,O=pool-manager tests\n"
        )
        // require, behind the header too: no certificate, no service.
        assert.notInclude(yield* tlsAsk(proxied.port, trust, header), "anonymous")
        assert.strictEqual(
          total(yield* proxied.metrics, "pool_tls_handshake_failures_total", { reason: "no_certificate" }),
          1
        )
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    30_000
  )
})
