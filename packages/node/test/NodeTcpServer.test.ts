import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { type ManagerConfig, PoolManager } from "@pool-manager/core"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { NodeTcpServer } from "../src/index.ts"
import { connect, portOf } from "./utils/client.ts"

/** The Go original's callback, recording the length of every message. */
const specCallback =
  (lengths: Array<number>): PoolManager.Callback =>
  (conn, _body, len) =>
    Effect.suspend(() => {
      lengths.push(len)
      return Effect.ignore(conn.write(len > 0 ? "OK" : "ERROR"))
    })

const serverLayer = (config: ManagerConfig.Input, lengths: Array<number>) =>
  NodeTcpServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
    Layer.provideMerge(PoolManager.layer(config, specCallback(lengths)))
  )

/** Builds the server in the test's scope and returns its port and manager. */
const startServer = (config: ManagerConfig.Input, lengths: Array<number> = []) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(serverLayer(config, lengths))
    const server = Context.get(context, NodeTcpServer.NodeTcpServer)
    return { port: portOf(server.address), manager: Context.get(context, PoolManager.PoolManager) }
  })

const waitUntil = (condition: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      if (yield* condition) return
      yield* Effect.sleep("10 millis")
    }
    assert.fail(`timed out waiting for ${what}`)
  })

describe("NodeTcpServer", () => {
  it.live("answers OK, for several messages on one connection", () =>
    Effect.gen(function* () {
      const lengths: Array<number> = []
      const { port } = yield* startServer({ minWorkersCount: 1, maxWorkersCount: 2 }, lengths)
      const client = yield* connect(port)
      yield* client.send("HI!")
      assert.strictEqual(yield* client.receive(2), "OK")
      yield* client.send("again")
      assert.strictEqual(yield* client.receive(4), "OKOK")
      yield* client.send("and again")
      assert.strictEqual(yield* client.receive(6), "OKOKOK")
      assert.deepStrictEqual(lengths, [3, 5, 9])
    })
  )

  it.live("drops a client that stops reading its replies, after clientsDeadline without progress", () =>
    Effect.gen(function* () {
      // Larger than what the kernel buffers on loopback, so the write cannot finish.
      const reply = new Uint8Array(16 * 1024 * 1024)
      const context = yield* Layer.build(
        NodeTcpServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
          Layer.provideMerge(
            PoolManager.layer({ maxWorkersCount: 1, clientsDeadline: "300 millis" }, (conn) => conn.write(reply))
          )
        )
      )
      const port = portOf(Context.get(context, NodeTcpServer.NodeTcpServer).address)
      const manager = Context.get(context, PoolManager.PoolManager)
      const socket = Net.connect(port, "127.0.0.1")
      socket.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
      socket.pause() // never reads
      socket.write("HI!")
      const sent = Date.now()
      yield* waitUntil(
        Effect.map(manager.stats, (stats) => stats.closedByDeadline === 1 && stats.busy === 0),
        "the stuck write to time out"
      )
      assert.isAtLeast(Date.now() - sent, 300)
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 0)
      assert.strictEqual(stats.idle, 1)
    })
  )

  it.live("answers ERROR_SERVER_BUSY and closes at max + 1; capacity returns when a client leaves", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* startServer({ maxWorkersCount: 2, clientsDeadline: "1 minute" })
      const first = yield* connect(port)
      const second = yield* connect(port)
      yield* waitUntil(
        Effect.map(manager.stats, (s) => s.busy === 2),
        "two busy workers"
      )
      const third = yield* connect(port)
      assert.strictEqual(yield* third.receive(17), "ERROR_SERVER_BUSY")
      yield* third.closed()
      first.socket.end()
      yield* first.closed()
      yield* waitUntil(
        Effect.map(manager.stats, (s) => s.busy === 1),
        "a worker to be freed"
      )
      const fourth = yield* connect(port)
      yield* fourth.send("HI!")
      assert.strictEqual(yield* fourth.receive(2), "OK")
      yield* second.send("HI!")
      assert.strictEqual(yield* second.receive(2), "OK")
      assert.strictEqual((yield* manager.stats).rejected, 1)
    })
  )

  it.live("closes an idle connection after clientsDeadline", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* startServer({ clientsDeadline: "200 millis" })
      const client = yield* connect(port)
      const started = Date.now()
      yield* client.closed(3000)
      const elapsed = Date.now() - started
      assert.isAtLeast(elapsed, 150)
      assert.strictEqual((yield* manager.stats).closedByDeadline, 1)
    })
  )

  it.live("a 12,000-byte burst reaches the callback as one 12,000-byte message", () =>
    Effect.gen(function* () {
      const lengths: Array<number> = []
      const { port } = yield* startServer({ bufferSize: 5120 }, lengths)
      const client = yield* connect(port)
      yield* client.send(Buffer.alloc(12_000, 0x61))
      assert.strictEqual(yield* client.receive(2), "OK")
      assert.deepStrictEqual(lengths, [12_000])
    })
  )

  it.live("a client reset mid-read leaves the server serving", () =>
    Effect.gen(function* () {
      const { port, manager } = yield* startServer({ maxWorkersCount: 1 })
      const rude = yield* connect(port)
      yield* waitUntil(
        Effect.map(manager.stats, (s) => s.busy === 1),
        "the rude client to be served"
      )
      rude.socket.resetAndDestroy()
      yield* waitUntil(
        Effect.map(manager.stats, (s) => s.busy === 0),
        "the reset connection to be freed"
      )
      const polite = yield* connect(port)
      yield* polite.send("HI!")
      assert.strictEqual(yield* polite.receive(2), "OK")
    })
  )

  it.live("releasing the layer closes the listener", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { port } = yield* startServer({}).pipe(Scope.provide(scope))
      const client = yield* connect(port)
      yield* client.send("HI!")
      assert.strictEqual(yield* client.receive(2), "OK")
      yield* Scope.close(scope, Exit.void)
      yield* client.closed()
      const refused = yield* Effect.callback<string>((resume) => {
        const socket = Net.connect(port, "127.0.0.1")
        socket.on("connect", () => resume(Effect.succeed("connected")))
        socket.on("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? "error")))
      })
      assert.strictEqual(refused, "ECONNREFUSED")
    })
  )

  it.live("listening on a taken port fails with a ListenError that says so", () =>
    Effect.gen(function* () {
      const { port } = yield* startServer({})
      const error = yield* Effect.flip(
        Layer.build(NodeTcpServer.layer({ port }).pipe(Layer.provide(PoolManager.layer({}, specCallback([])))))
      )
      assert.strictEqual(error._tag, "ListenError")
      assert.include(error.message, "in use")
    })
  )
})
