/**
 * How an accepted socket reaches the pool (internal/accept.ts), over real
 * loopback sockets: a `put` that does not complete at once (the `queue`
 * admission policy) answers `busyReply` and closes the socket when its wait
 * fails, and leaves the socket to the pool when a worker took it; the
 * server's `connections` counts sockets behind a PROXY header too; and
 * `proxyProtocol: false` is a plain listener; a client that half-closes
 * after its last message still gets the reply.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ManagerConfig, PoolManager } from "@pool-manager/core"
import { Context, Effect, Layer, Metric } from "effect"
import { NodeTcpServer } from "../src/index.ts"
import { connect, portOf } from "./utils/client.ts"
import { v1 } from "./utils/proxyHeaders.ts"

const answer: PoolManager.Callback = (conn) => Effect.ignore(conn.write("OK\n"))

const start = (options: NodeTcpServer.Options, config: ManagerConfig.Input = {}, callback = answer) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      NodeTcpServer.layer({ host: "127.0.0.1", port: 0, busyReply: "BUSY\n", ...options }).pipe(
        Layer.provideMerge(PoolManager.layer({ clientsDeadline: "10 seconds", ...config }, callback))
      )
    )
    const server = Context.get(context, NodeTcpServer.NodeTcpServer)
    return { server, port: portOf(server.address), manager: Context.get(context, PoolManager.PoolManager) }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

describe("NodeTcpServer admission", () => {
  it.live("a queued client is answered busyReply and closed when its wait times out, and served once admitted", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* start(
        {},
        { maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 second" }
      )
      const holder = yield* connect(port)
      yield* holder.send("HI")
      assert.strictEqual(yield* holder.receive(3), "OK\n")

      // The only worker is busy: this one waits in the queue, then is refused.
      const late = yield* connect(port)
      yield* late.closed(3000)
      assert.strictEqual(late.received(), "BUSY\n")
      assert.strictEqual((yield* manager.stats).rejected, 1)

      // This one waits too, and gets the worker the holder gives back.
      const next = yield* connect(port)
      yield* Effect.sleep("50 millis")
      holder.socket.end()
      yield* holder.closed()
      yield* next.send("HI")
      assert.strictEqual(yield* next.receive(3), "OK\n")
      yield* next.send("again")
      assert.strictEqual(yield* next.receive(6), "OK\nOK\n", "the admitted client stays served")
      assert.strictEqual((yield* manager.stats).rejected, 1)
    }).pipe(Effect.scoped)
  )

  it.live("connections counts the sockets behind a PROXY header; proxyProtocol false reads no header", () =>
    Effect.gen(function* () {
      const proxied = yield* start({ proxyProtocol: true })
      for (const n of [1, 2]) {
        const client = yield* connect(proxied.port)
        yield* client.send(
          Buffer.concat([v1("TCP4", ["192.0.2.1", "127.0.0.1", 5000, proxied.port]), Buffer.from("HI")])
        )
        assert.strictEqual(yield* client.receive(3), "OK\n")
        assert.strictEqual(yield* proxied.server.connections, n)
      }

      const plain = yield* start({ proxyProtocol: false })
      const client = yield* connect(plain.port)
      yield* client.send("HI, no header")
      assert.strictEqual(yield* client.receive(3), "OK\n")
      assert.strictEqual(yield* plain.server.connections, 1)
      assert.isTrue(Object.values(yield* plain.server.proxyRejected).every((n) => n === 0))
    }).pipe(Effect.scoped)
  )

  it.live("a client that sends its last message and half-closes still gets the reply", () =>
    Effect.gen(function* () {
      // The reply comes after the client's end has arrived.
      const { port } = yield* start({}, {}, (conn) =>
        Effect.ignore(Effect.andThen(Effect.sleep("50 millis"), conn.write("OK\n")))
      )
      const client = yield* connect(port)
      client.socket.end("HI")
      yield* client.closed(3000)
      assert.strictEqual(client.received(), "OK\n")
    }).pipe(Effect.scoped)
  )
})
