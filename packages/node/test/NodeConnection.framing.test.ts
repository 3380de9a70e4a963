import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Framing, PoolManager } from "@pool-manager/core"
import { Effect, Queue } from "effect"
import { NodeConnection } from "../src/index.ts"
import { connect } from "./utils/client.ts"

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

// Counts the writes that reach the socket's handle: one `_writev` of corked
// writes is one, each `_write` one more.
const countWrites = (socket: Net.Socket): { readonly count: () => number } => {
  let writes = 0
  const raw = socket as unknown as Record<"_write" | "_writev", (...args: Array<unknown>) => unknown>
  const write = raw._write.bind(socket)
  const writev = raw._writev.bind(socket)
  raw._write = (...args) => {
    writes++
    return write(...args)
  }
  raw._writev = (...args) => {
    writes++
    return writev(...args)
  }
  return { count: () => writes }
}

const decoder = new TextDecoder()

describe("NodeConnection with a framing", () => {
  for (const kind of ["effect", "sync"] as const) {
    it.live(`a chunk of pipelined lines gets its replies in one write (${kind} callback)`, () =>
      Effect.gen(function* () {
        const answer = (line: Uint8Array) => `${decoder.decode(line) === "PING" ? "PONG" : "ERR"}\r\n`
        const manager = yield* PoolManager.make(
          { framing: Framing.lines() },
          kind === "sync"
            ? PoolManager.syncCallback((conn, line) => {
                conn.writeNow(answer(line))
              })
            : (conn, line) => Effect.orDie(conn.write(answer(line)))
        )
        yield* manager.start
        const { port, accept } = yield* listen
        const client = yield* connect(port)
        const socket = yield* accept
        const writes = countWrites(socket)
        yield* manager.put(NodeConnection.make(socket))
        yield* client.send("PING\r\nPING\r\nNOPE\r\nPING\r\n")
        assert.strictEqual(yield* client.receive(23), "PONG\r\nPONG\r\nERR\r\nPONG\r\n")
        assert.strictEqual(writes.count(), 1)
        // A line in two segments is joined.
        yield* client.send("PI")
        yield* Effect.sleep("20 millis")
        yield* client.send("NG\n")
        assert.strictEqual((yield* client.receive(29)).slice(23), "PONG\r\n")
        assert.strictEqual(writes.count(), 2)
      })
    )
  }

  it.live("a line that never ends is closed once it passes maxMessageBytes, not buffered", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const manager = yield* PoolManager.make(
        { framing: Framing.lines(), maxMessageBytes: 64 * 1024 },
        PoolManager.syncCallback((conn, line) => {
          seen.push(decoder.decode(line))
          conn.writeNow("OK\n")
        })
      )
      yield* manager.start
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      yield* manager.put(NodeConnection.make(yield* accept))
      yield* client.send("hello\n")
      assert.strictEqual(yield* client.receive(3), "OK\n")
      // 4 MiB without a newline: the server closes as soon as 64 KiB prove the line too long.
      const flood = Buffer.alloc(4 * 1024 * 1024, 120)
      client.socket.write(flood)
      yield* client.closed(10_000)
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedBySize, 1)
      assert.deepStrictEqual(seen, ["hello"])
    })
  )

  it.live("a callback's read fails with Timeout after clientsDeadline on a silent real socket", () =>
    Effect.gen(function* () {
      const outcomes: Array<string> = []
      const manager = yield* PoolManager.make({ clientsDeadline: "150 millis" }, (conn) =>
        conn.read.pipe(
          Effect.map((bytes) => outcomes.push(`read ${decoder.decode(bytes)}`)),
          Effect.catchTag("ConnectionError", (error) => Effect.sync(() => outcomes.push(error.reason))),
          Effect.andThen(Effect.ignore(conn.write("done")))
        )
      )
      yield* manager.start
      const { port, accept } = yield* listen
      const client = yield* connect(port)
      yield* manager.put(NodeConnection.make(yield* accept))
      const started = performance.now()
      yield* client.send("hello")
      assert.strictEqual(yield* client.receive(4), "done")
      const waited = performance.now() - started
      assert.deepStrictEqual(outcomes, ["Timeout"])
      // Bounded both ways, generously for a loaded machine.
      assert.isAtLeast(waited, 140)
      assert.isBelow(waited, 3000)
    })
  )
})
