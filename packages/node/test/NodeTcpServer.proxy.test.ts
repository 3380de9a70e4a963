import * as Net from "node:net"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { type ManagerConfig, PoolManager } from "@pool-manager/core"
import { Context, Effect, Layer, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { type NodeProxyProtocol, NodeTcpServer } from "../src/index.ts"
import { certificate } from "./utils/certificate.ts"
import { connect, portOf } from "./utils/client.ts"
import { inet4, inet6, v1, v2 } from "./utils/proxyHeaders.ts"

/** Answers every message with the connection's address, as the pool sees it. */
const echoAddress: PoolManager.Callback = (conn) => Effect.ignore(conn.write(`${conn.remoteAddress}\n`))

const start = (proxyProtocol: NodeTcpServer.Options["proxyProtocol"], config: ManagerConfig.Input = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      NodeTcpServer.layer({ host: "127.0.0.1", port: 0, proxyProtocol }).pipe(
        Layer.provideMerge(PoolManager.layer({ maxWorkersCount: 4, ...config }, echoAddress))
      )
    )
    const server = Context.get(context, NodeTcpServer.NodeTcpServer)
    return { port: portOf(server.address), server, manager: Context.get(context, PoolManager.PoolManager) }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

describe("NodeTcpServer with proxyProtocol", () => {
  it.live("serves v1 and v2 clients under the address their header names, bytes after it included", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* start(true)
      const first = yield* connect(port)
      yield* first.send(Buffer.concat([v1("TCP4", ["192.0.2.1", "192.0.2.9", 5000, 6263]), Buffer.from("HI")]))
      assert.strictEqual(yield* first.receive(15), "192.0.2.1:5000\n")
      const second = yield* connect(port)
      const header = v2({
        family: 2,
        addresses: inet6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1], [4000, 6263]),
        tlvs: [{ type: 0x04, value: Buffer.from("no-op") }]
      })
      // One byte at a time: the header must survive any segmentation.
      for (const byte of header) {
        yield* second.send(Uint8Array.of(byte))
        yield* Effect.sleep("1 millis")
      }
      yield* second.send("HI")
      assert.strictEqual(yield* second.receive(19, 2000), "[2001:db8::1]:4000\n")
      // LOCAL (a balancer's health check) keeps the real peer.
      const local = yield* connect(port)
      yield* local.send(
        Buffer.concat([
          v2({ command: 0, family: 1, addresses: inet4([1, 1, 1, 1], [2, 2, 2, 2], [1, 2]) }),
          Buffer.from("HI")
        ])
      )
      assert.match(yield* local.receive(12), /^127\.0\.0\.1:\d+\n$/)
      assert.strictEqual((yield* manager.stats).accepted, 3)
    })
  )

  it.live("limits connections per address by the client the header names", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* start(true, { maxConnectionsPerAddress: 1 })
      const header = (host: string, clientPort: number) => v1("TCP4", [host, "127.0.0.1", clientPort, port])
      const a = yield* connect(port)
      yield* a.send(Buffer.concat([header("192.0.2.2", 1000), Buffer.from("HI")]))
      yield* a.receive(15)
      const b = yield* connect(port)
      yield* b.send(Buffer.concat([header("192.0.2.3", 1000), Buffer.from("HI")]))
      assert.strictEqual(yield* b.receive(15), "192.0.2.3:1000\n")
      // The same client again, through the same proxy address: over its limit.
      const again = yield* connect(port)
      yield* again.send(Buffer.concat([header("192.0.2.2", 1001), Buffer.from("HI")]))
      yield* again.closed()
      assert.strictEqual(again.received(), "ERROR_SERVER_BUSY")
      assert.strictEqual((yield* manager.stats).rejectedByAddress, 1)
    })
  )

  it.live("closes, counts and never admits untrusted peers and bad, oversized, late or missing headers", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<
        readonly [NodeProxyProtocol.RejectReason, NodeTcpServer.Options["proxyProtocol"], Uint8Array]
      > = [
        ["untrusted", { trustedProxies: ["10.0.0.0/8", "::1"] }, v1("TCP4", ["192.0.2.1", "192.0.2.9", 1, 2])],
        ["missing", true, Buffer.from("HI, no header here\r\n")],
        ["malformed", true, Buffer.from("PROXY TCP4 192.0.2.1 192.0.2.300 1 2\r\nHI")],
        ["oversized", true, Buffer.from(`PROXY UNKNOWN ${"x".repeat(200)}`)],
        [
          "oversized",
          { maxHeaderBytes: 64 },
          v2({
            family: 1,
            addresses: inet4([1, 1, 1, 1], [2, 2, 2, 2], [1, 2]),
            tlvs: [{ type: 1, value: new Uint8Array(64) }]
          })
        ],
        ["timeout", { headerTimeout: "200 millis" }, Buffer.from("PROXY TCP4 192.0")],
        ["closed", true, Buffer.from("PROXY TCP4 ")]
      ]
      for (const [reason, options, bytes] of cases) {
        const { port, server, manager } = yield* start(options)
        const client = yield* connect(port)
        yield* client.send(bytes)
        if (reason === "closed") client.socket.end()
        yield* client.closed(3000)
        assert.strictEqual(client.received(), "", reason)
        const rejected = yield* server.proxyRejected
        assert.strictEqual(rejected[reason], 1, reason)
        assert.strictEqual(
          Object.values(rejected).reduce((sum, n) => sum + n, 0),
          1,
          `${reason}: ${JSON.stringify(rejected)}`
        )
        assert.strictEqual((yield* manager.stats).accepted, 0, reason)
      }
    })
  )

  it.live("exports the rejections as pool_proxy_connections_rejected_total{reason}", () =>
    Effect.gen(function* () {
      const registry = new Map()
      yield* Effect.gen(function* () {
        const context = yield* Layer.build(
          NodeTcpServer.layer({ host: "127.0.0.1", port: 0, proxyProtocol: true }).pipe(
            Layer.provideMerge(PoolManager.layer({}, echoAddress))
          )
        )
        const port = portOf(Context.get(context, NodeTcpServer.NodeTcpServer).address)
        for (let i = 0; i < 2; i++) {
          const client = yield* connect(port)
          yield* client.send("GET / HTTP/1.0\r\n\r\n")
          yield* client.closed()
        }
        const text = yield* PrometheusMetrics.format()
        assert.match(text, /pool_proxy_connections_rejected_total\{reason="missing"\} 2/)
        assert.match(text, /pool_proxy_connections_rejected_total\{reason="untrusted"\} 0/)
      }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
    })
  )

  it.effect("refuses bad trusted proxies with a ProxyProtocolError", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.flip(start({ trustedProxies: ["10.0.0.0/40"] }))
      assert.strictEqual(bad._tag, "ProxyProtocolError")
      assert.include(bad.message, "10.0.0.0/40")
    })
  )

  it.live("with TLS, reads the header first and starts TLS after it; a failed handshake never reaches the pool", () =>
    Effect.gen(function* () {
      const { key, cert } = yield* certificate
      const context = yield* Layer.build(
        NodeTcpServer.layer({ host: "127.0.0.1", port: 0, proxyProtocol: true, tls: { key, cert } }).pipe(
          Layer.provideMerge(PoolManager.layer({}, echoAddress))
        )
      )
      const port = portOf(Context.get(context, NodeTcpServer.NodeTcpServer).address)
      const manager = Context.get(context, PoolManager.PoolManager)
      const reply = yield* Effect.callback<string, Error>((resume) => {
        const raw = Net.connect(port, "127.0.0.1", () => {
          raw.write(v1("TCP4", ["203.0.113.5", "127.0.0.1", 7000, port]))
          const secure = Tls.connect({ socket: raw, ca: cert, servername: "localhost" }, () => secure.write("HI"))
          let text = ""
          secure.on("data", (chunk) => {
            text += chunk
            if (text.endsWith("\n")) resume(Effect.succeed(text))
          })
          secure.on("error", (error) => resume(Effect.fail(error)))
        })
        return Effect.sync(() => raw.destroy())
      }).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(reply, "203.0.113.5:7000\n")
      // A header, then bytes that are not a TLS hello.
      const plain = yield* connect(port)
      yield* plain.send(
        Buffer.concat([v1("TCP4", ["203.0.113.6", "127.0.0.1", 7000, port]), Buffer.from("GET / HTTP/1.0\r\n\r\n")])
      )
      yield* plain.closed()
      assert.strictEqual(plain.received(), "")
      assert.strictEqual((yield* manager.stats).accepted, 1)
    })
  )
})
