import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Deferred, Effect, Fiber, Queue } from "effect"
import { NodeConnection } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { within } from "./utils/within.ts"

/** A plain `net.Server` on a free port whose accepted sockets arrive on a queue. */
const listen = Effect.gen(function* () {
  const sockets = yield* Queue.unbounded<Net.Socket>()
  const server = yield* Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer({ allowHalfOpen: true }, (socket) => Queue.offerUnsafe(sockets, socket))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.sync(() => server.close())
  )
  const port = (server.address() as Net.AddressInfo).port
  return { port, accept: Queue.take(sockets) }
})

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString()

describe("NodeConnection", () => {
  it.live("reads chunks of at most bufferSize, then fails once the peer closed", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      const connection = NodeConnection.make(yield* accept, { bufferSize: 4 })
      assert.match(connection.remoteAddress, /^127\.0\.0\.1:\d+$/)
      yield* client.send("abcdefghij")
      let got = ""
      while (got.length < 10) {
        const chunk = yield* connection.read
        assert.isAtMost(chunk.length, 4)
        got += text(chunk)
      }
      assert.strictEqual(got, "abcdefghij")
      client.socket.end()
      const error = yield* Effect.flip(connection.read)
      assert.strictEqual(error.reason, "Closed")
    })
  )

  it.live("knows when the peer ended, and still names the peer after the socket is gone", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      const socket = yield* accept
      const connection = NodeConnection.make(socket)
      const local = `127.0.0.1:${client.socket.localPort}`
      assert.isFalse(connection.transport.ended)
      client.socket.resetAndDestroy()
      const error = yield* Effect.flip(connection.read)
      assert.isTrue(connection.transport.ended)
      assert.strictEqual(error.reason, "Closed")
      yield* Effect.sleep("20 millis")
      assert.isTrue(socket.destroyed)
      // The address is formatted lazily, from the peer name cached while the socket was open.
      assert.strictEqual(connection.remoteAddress, local)
      assert.include(error.message, local)
    })
  )

  it.live("a pending read is interruptible, and the bytes stay for the next read", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      const socket = yield* accept
      const connection = NodeConnection.make(socket)
      const pending = yield* Effect.forkChild(connection.read)
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(pending)
      yield* client.send("kept")
      yield* Effect.sleep("20 millis")
      assert.strictEqual(text(yield* connection.read), "kept")
    })
  )

  it.live("a half-closing client still gets the reply to its last message", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      const manager = yield* PoolManager.make({}, (conn, _body, len) => Effect.ignore(conn.write(`got ${len}`)))
      yield* manager.start
      const client = yield* connect(port)
      yield* manager.put(NodeConnection.make(yield* accept))
      client.socket.end("HI!")
      assert.strictEqual(yield* client.receive(5), "got 3")
      yield* client.closed()
    })
  )

  it.live("close is idempotent, flushes what was written, and never throws on a reset socket", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      const connection = NodeConnection.make(yield* accept)
      yield* connection.write("bye")
      yield* connection.close
      yield* connection.close
      assert.strictEqual(yield* client.receive(3), "bye")
      yield* client.closed()
      assert.strictEqual((yield* Effect.flip(connection.write("late"))).reason, "LocalClosed")

      const rude = yield* connect(port)
      const reset = NodeConnection.make(yield* accept)
      rude.socket.resetAndDestroy()
      const error = yield* Effect.flip(reset.read)
      assert.strictEqual(error.reason, "Closed")
      yield* reset.close
      yield* reset.close
    })
  )

  it.live("a client that floods without reading is held back by TCP, not buffered by the server", () =>
    Effect.gen(function* () {
      const { port, accept } = yield* listen
      // Echoing makes the replies as large as the flood: they pile up unread
      // unless writes wait for the peer, and reads wait for the writes.
      const manager = yield* PoolManager.make({ bufferSize: 5120 }, (conn, body) => Effect.ignore(conn.write(body)))
      yield* manager.start
      const flooder = yield* connect(port)
      const socket = yield* accept
      yield* manager.put(NodeConnection.make(socket))
      flooder.socket.pause() // never reads the replies
      const chunk = Buffer.alloc(64 * 1024, 0x78)
      const target = 50 * 1024 * 1024
      let queued = 0
      const stalled = yield* Deferred.make<void>()
      // Write as fast as the socket accepts, up to 50 MB; stop when TCP pushes back for 500 ms.
      const pump = () => {
        while (queued < target) {
          queued += chunk.length
          if (!flooder.socket.write(chunk)) {
            const timer = setTimeout(() => Deferred.doneUnsafe(stalled, Effect.void), 500)
            flooder.socket.once("drain", () => {
              clearTimeout(timer)
              pump()
            })
            return
          }
        }
        Deferred.doneUnsafe(stalled, Effect.void)
      }
      pump()
      yield* within(Deferred.await(stalled), "20 seconds", "the socket to stall")
      const delivered = queued - flooder.socket.writableLength
      // The kernel's buffers and Node's high-water marks bound what the server holds.
      assert.isBelow(delivered, 16 * 1024 * 1024, `the server took ${delivered} bytes`)
      assert.isBelow(socket.readableLength, 1024 * 1024)
      assert.isBelow(socket.writableLength, 1024 * 1024)
      // and it still serves others
      const polite = yield* connect(port)
      yield* manager.put(NodeConnection.make(yield* accept))
      yield* polite.send("HI!")
      assert.strictEqual(yield* polite.receive(3), "HI!")
    })
  )
})
