/**
 * The write side of the socket transport under `NodeConnection`, over real
 * loopback sockets in this process: how long a write held back by the peer
 * waits (its deadline counts from the last progress, never for an infinite
 * deadline), what ends the wait (drain, timeout, the socket going, once
 * each), what a close or a peer's half-close means for the next write,
 * cork, and Nagle's algorithm.
 */
import type * as Net from "node:net"
import { assert, describe, it, vi } from "@effect/vitest"
import type { PoolError } from "@pool-manager/core"
import { Effect, Fiber } from "effect"
import { NodeConnection } from "../src/index.ts"
import { received, socketPair, until } from "./utils/socketPair.ts"
import { within } from "./utils/within.ts"

/**
 * A transport whose peer reads nothing, with `bytes` written: more than the
 * kernel's buffers take, so the rest is held back in Node's.
 */
const heldBack = (bytes = 16 * 1024 * 1024) =>
  Effect.gen(function* () {
    const { server, client } = yield* socketPair()
    const transport = NodeConnection.makeTransport(server)
    client.pause()
    assert.isFalse(transport.write(Buffer.alloc(bytes)))
    return { server, client, transport }
  })

/** Resolves with what `awaitWritable` reports (undefined: writable again). */
const writable = (transport: ReturnType<typeof NodeConnection.makeTransport>, timeoutMillis: number) =>
  Effect.callback<PoolError.ConnectionError | undefined>((resume) => {
    const cancel = transport.awaitWritable(timeoutMillis, (error) => resume(Effect.succeed(error)))
    return Effect.sync(cancel)
  })

/** Every report of one `awaitWritable`, recorded. */
const record = (transport: ReturnType<typeof NodeConnection.makeTransport>, timeoutMillis: number) => {
  const reports: Array<PoolError.ConnectionError | undefined> = []
  const cancel = transport.awaitWritable(timeoutMillis, (error) => reports.push(error))
  return { reports, cancel }
}

/** Lets the paused `socket` read about `bytes`, then pauses it again. */
const readAbout = (socket: Net.Socket, bytes: number) =>
  Effect.callback<void>((resume) => {
    let read = 0
    const onData = (chunk: Buffer) => {
      read += chunk.length
      if (read < bytes) return
      socket.pause()
      socket.off("data", onData)
      resume(Effect.void)
    }
    socket.on("data", onData)
    socket.resume()
  })

describe("NodeConnection writes", () => {
  it.live("counts the bytes written; a failure exists only once the stream ended", () =>
    Effect.gen(function* () {
      const { server } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      assert.isUndefined(transport.failure)
      transport.write("hello")
      yield* until(() => transport.bytesWritten === 5, "5 bytes written", "1 second")
      assert.isUndefined(transport.failure)
    })
  )

  it.live("writes a Uint8Array's own bytes: a view into a larger buffer, the same array again, a large one", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const got = received(client)
      const encoder = new TextEncoder()
      const ok = encoder.encode("xxOKyy").subarray(2, 4)
      transport.write(ok)
      transport.write(encoder.encode("|"))
      transport.write(ok)
      // Past the size whose Buffer a connection keeps for the next write.
      transport.write(new Uint8Array(1000).fill(97))
      transport.write(ok)
      // The array changed since its last write: its new bytes go (what is sent is never a stale copy).
      ok[0] = 78
      transport.write(ok)
      const expected = `OK|OK${"a".repeat(1000)}OKNK`
      yield* until(() => got().length >= expected.length, `${expected.length} bytes received`)
      assert.strictEqual(got(), expected)
    })
  )

  it.live("a wait with an infinite deadline never times out, however long the peer reads nothing", () =>
    Effect.gen(function* () {
      const { transport } = yield* heldBack()
      const waiting = record(transport, Infinity)
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(waiting.reports, [])
      waiting.cancel()
    })
  )

  it.live("a peer that reads slowly, but reads, is not timed out: the deadline counts from the last progress", () =>
    Effect.gen(function* () {
      const { client, transport } = yield* heldBack(64 * 1024 * 1024)
      const waiting = record(transport, 250)
      // About 1 MB every 100 ms: far less than is queued, but progress in every 250 ms.
      for (let i = 0; i < 8; i++) {
        yield* Effect.sleep("100 millis")
        yield* readAbout(client, 1024 * 1024)
      }
      assert.deepStrictEqual(waiting.reports, [], "a reader making progress was timed out")
      client.resume()
      yield* until(() => waiting.reports.length > 0, "the buffer to drain", "10 seconds")
      assert.deepStrictEqual(waiting.reports, [undefined])
    })
  )

  it.live("a wait reports once: after its drain, its deadline no longer fires", () =>
    Effect.gen(function* () {
      const { server, client, transport } = yield* heldBack(4 * 1024 * 1024)
      const closeListeners = server.listenerCount("close")
      const waiting = record(transport, 200)
      client.resume()
      yield* until(() => waiting.reports.length > 0, "the buffer to drain", "5 seconds")
      yield* Effect.sleep("400 millis")
      assert.deepStrictEqual(waiting.reports, [undefined])
      assert.strictEqual(server.listenerCount("close"), closeListeners)
    })
  )

  it.live("a socket that fails while a write waits reports its own failure", () =>
    Effect.gen(function* () {
      const { server, transport } = yield* heldBack()
      const waiting = record(transport, 60_000)
      const cause = Object.assign(new Error("the disk is on fire"), { code: "EFIRE" })
      server.destroy(cause)
      yield* until(() => waiting.reports.length > 0, "the failure", "1 second")
      assert.strictEqual(waiting.reports[0]?.reason, "Error")
    })
  )

  it.live("after close, a wait fails at once; after the peer's half-close, writes still go through", () =>
    Effect.gen(function* () {
      const closed = yield* socketPair()
      const local = NodeConnection.makeTransport(closed.server, { lingerMillis: 60_000 })
      local.close()
      const afterClose = record(local, 1000)
      assert.strictEqual(afterClose.reports[0]?.reason, "LocalClosed")

      const half = yield* socketPair()
      const transport = NodeConnection.makeTransport(half.server)
      let got = ""
      half.client.on("data", (chunk: Buffer) => {
        got += chunk.toString()
      })
      half.client.end()
      yield* until(() => transport.ended, "the peer's half-close", "1 second")
      assert.isTrue(transport.write("still here"))
      const afterEnd = record(transport, 1000)
      assert.deepStrictEqual(afterEnd.reports, [undefined])
      yield* until(() => got === "still here", "the reply to reach the half-closed peer", "1 second")
    })
  )

  it.live("a socket closed locally, without an error, ends a pending read as Closed", () =>
    Effect.gen(function* () {
      const { server } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const waiting = yield* Effect.forkChild(
        Effect.callback<string>((resume) => {
          transport.awaitReadable(60_000, (event) => resume(Effect.succeed(event)))
        })
      )
      server.destroy()
      const exit = yield* within(Fiber.await(waiting), "1 second", "the close to end the wait")
      assert.isTrue(exit._tag === "Success" && exit.value === "done")
      assert.strictEqual(transport.failure?.reason, "Closed")
    })
  )

  it.live("writes fail with LocalClosed once the socket is closed, ended or destroyed", () =>
    Effect.gen(function* () {
      const closed = yield* socketPair()
      const a = NodeConnection.makeTransport(closed.server)
      assert.isTrue(a.write("ok"))
      a.close()
      assert.strictEqual((a.write("late") as PoolError.ConnectionError).reason, "LocalClosed")

      const ended = yield* socketPair()
      const b = NodeConnection.makeTransport(ended.server)
      ended.server.end()
      assert.strictEqual((b.write("late") as PoolError.ConnectionError).reason, "LocalClosed")

      const destroyed = yield* socketPair()
      const c = NodeConnection.makeTransport(destroyed.server)
      destroyed.server.destroy()
      assert.strictEqual((c.write("late") as PoolError.ConnectionError).reason, "LocalClosed")
    })
  )

  it.live("awaitWritable: at once when nothing is held back, or with the failure once the socket is gone", () =>
    Effect.gen(function* () {
      const { server } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const reports: Array<PoolError.ConnectionError | undefined> = []
      transport.awaitWritable(1000, (error) => reports.push(error))
      assert.deepStrictEqual(reports, [undefined])
      transport.abort()
      transport.awaitWritable(1000, (error) => reports.push(error))
      assert.strictEqual(reports.length, 2)
      assert.strictEqual(reports[1]?.reason, "LocalClosed")
    })
  )

  it.live("a write held back by a peer that reads nothing times out; one the peer reads through drains", () =>
    Effect.gen(function* () {
      const { server, client, transport } = yield* heldBack(32 * 1024 * 1024)
      const drainListeners = server.listenerCount("drain")
      const started = performance.now()
      const timedOut = yield* within(writable(transport, 200), "5 seconds", "the write to time out")
      assert.strictEqual(timedOut?.reason, "Timeout")
      assert.isAtLeast(performance.now() - started, 190)
      // Its listeners went with it.
      assert.strictEqual(server.listenerCount("drain"), drainListeners)
      // A peer that reads lets the next wait through, well within its deadline.
      const waiting = yield* Effect.forkChild(writable(transport, 10_000))
      client.resume()
      const drained = yield* within(Fiber.await(waiting), "10 seconds", "the buffer to drain")
      assert.isTrue(drained._tag === "Success" && drained.value === undefined)
      assert.strictEqual(server.listenerCount("drain"), drainListeners)
    })
  )

  it.live("a write held back when the peer goes away ends with the failure, not a timeout", () =>
    Effect.gen(function* () {
      const { client, transport } = yield* heldBack(32 * 1024 * 1024)
      const waiting = yield* Effect.forkChild(writable(transport, 60_000))
      yield* Effect.sleep("20 millis")
      client.resetAndDestroy()
      const exit = yield* within(Fiber.await(waiting), "2 seconds", "the reset to end the wait")
      assert.isTrue(exit._tag === "Success" && exit.value?.reason === "Closed")
    })
  )

  it.live("cork holds a synchronous run's writes and sends them together; corking twice uncorks once", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const got = received(client)
      transport.cork?.()
      transport.cork?.()
      transport.write("a")
      transport.write("b")
      assert.strictEqual(server.writableCorked, 1)
      yield* until(() => got() === "ab", "the corked writes")
      assert.strictEqual(server.writableCorked, 0)
    })
  )

  it.live("disables Nagle's algorithm unless told not to", () =>
    Effect.gen(function* () {
      const first = yield* socketPair()
      const on = vi.spyOn(first.server, "setNoDelay")
      NodeConnection.makeTransport(first.server)
      assert.deepStrictEqual(on.mock.calls, [[true]])
      const second = yield* socketPair()
      const off = vi.spyOn(second.server, "setNoDelay")
      NodeConnection.makeTransport(second.server, { noDelay: false })
      assert.deepStrictEqual(off.mock.calls, [])
    })
  )
})
