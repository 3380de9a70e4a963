/**
 * The socket transport under `NodeConnection` (the `Connection.Transport`
 * contract over `node:net`), driven directly over real loopback sockets in
 * this process: the order of buffered bytes, the events of a wait and its
 * deadline, backpressure on writes, cork, and the three ways a socket ends
 * (the peer's, a graceful close, an abort).
 */
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it, vi } from "@effect/vitest"
import type { Connection, PoolError } from "@pool-manager/core"
import { Effect, Fiber } from "effect"
import { NodeConnection } from "../src/index.ts"
import { within } from "./utils/within.ts"

interface Pair {
  /** The accepted socket. */
  readonly server: Net.Socket
  /** The client's socket. */
  readonly client: Net.Socket
}

/** A connected pair of sockets over `listen` (a port on `host`, or a unix socket path), closed with the scope. */
const pair = (host: string | { readonly path: string } = "127.0.0.1") =>
  Effect.acquireRelease(
    Effect.callback<Pair & { readonly listener: Net.Server }>((resume) => {
      const listener = Net.createServer({ allowHalfOpen: true }, (server) => {
        server.on("error", () => {})
        resume(Effect.succeed({ server, client, listener }))
      })
      let client: Net.Socket
      const connect = () => {
        client =
          typeof host === "string"
            ? Net.connect({ port: (listener.address() as Net.AddressInfo).port, host, allowHalfOpen: true })
            : Net.connect({ path: host.path, allowHalfOpen: true })
        client.on("error", () => {})
      }
      if (typeof host === "string") listener.listen(0, host, connect)
      else listener.listen(host.path, connect)
    }),
    ({ server, client, listener }) =>
      Effect.sync(() => {
        server.destroy()
        client.destroy()
        listener.close()
      })
  )

/** Resolves with the first event `awaitReadable` gives. */
const nextEvent = (transport: Connection.Transport, timeoutMillis = Infinity) =>
  Effect.callback<Connection.ReadyEvent>((resume) => {
    const cancel = transport.awaitReadable(timeoutMillis, (event) => resume(Effect.succeed(event)))
    return Effect.sync(cancel)
  })

/** Resolves with what `awaitWritable` reports (undefined: writable again). */
const writable = (transport: Connection.Transport, timeoutMillis: number) =>
  Effect.callback<PoolError.ConnectionError | undefined>((resume) => {
    const cancel = transport.awaitWritable(timeoutMillis, (error) => resume(Effect.succeed(error)))
    return Effect.sync(cancel)
  })

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString())

const until = (condition: () => boolean, what: string) =>
  within(
    Effect.gen(function* () {
      while (!condition()) yield* Effect.sleep("5 millis")
    }),
    "2 seconds",
    what
  )

const received = (socket: Net.Socket) => {
  let got = ""
  socket.on("data", (chunk: Buffer) => {
    got += chunk.toString()
  })
  return () => got
}

describe("NodeConnection transport", () => {
  it.live("names its peer: host:port over IPv4, [host]:port over IPv6, unix over a unix socket", () =>
    Effect.gen(function* () {
      const v4 = yield* pair("127.0.0.1")
      const four = NodeConnection.makeTransport(v4.server)
      assert.strictEqual(four.remoteAddress, `127.0.0.1:${v4.client.localPort}`)
      assert.strictEqual(four.remoteHost, "127.0.0.1")
      const v6 = yield* pair("::1")
      const six = NodeConnection.makeTransport(v6.server)
      assert.strictEqual(six.remoteAddress, `[::1]:${v6.client.localPort}`)
      assert.strictEqual(six.remoteHost, "::1")
      const path = Path.join(Os.tmpdir(), `pool-manager-transport-${process.pid}-${Date.now()}.sock`)
      const unix = yield* pair({ path })
      const local = NodeConnection.makeTransport(unix.server)
      assert.strictEqual(local.remoteAddress, "unix")
      assert.strictEqual(local.remoteHost, "unix")
      const proxied = NodeConnection.makeTransport(v4.client, undefined, {
        remoteAddress: "192.0.2.1:5000",
        remoteHost: "192.0.2.1"
      })
      assert.strictEqual(proxied.remoteAddress, "192.0.2.1:5000")
      assert.strictEqual(proxied.remoteHost, "192.0.2.1")
    })
  )

  it.live("hands out buffered chunks in arrival order, a poll taking at most what it asks for", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      // Three chunks, each received before the next is sent, none polled yet.
      for (const chunk of ["aa", "bb", "cc"]) {
        const before = server.bytesRead
        client.write(chunk)
        yield* until(() => server.bytesRead === before + 2, `"${chunk}" to arrive`)
      }
      assert.strictEqual(text(transport.poll(100)), "aa")
      assert.strictEqual(text(transport.poll(1)), "b")
      assert.strictEqual(text(transport.poll(1)), "b")
      assert.strictEqual(text(transport.poll(2)), "cc")
      assert.isUndefined(transport.poll(100))
      client.write("dd")
      assert.strictEqual(yield* within(nextEvent(transport), "1 second", "the next bytes"), "readable")
      assert.strictEqual(text(transport.poll(100)), "dd")
    })
  )

  it.live("a wait ends at once when bytes are buffered or the stream has ended", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      client.write("x")
      yield* until(() => server.bytesRead === 1, "the byte to arrive")
      const events: Array<Connection.ReadyEvent> = []
      transport.awaitReadable(1000, (event) => events.push(event))
      assert.deepStrictEqual(events, ["readable"])
      transport.poll(10)
      client.end()
      assert.strictEqual(yield* within(nextEvent(transport), "1 second", "the end of the stream"), "done")
      transport.awaitReadable(1000, (event) => events.push(event))
      assert.deepStrictEqual(events, ["readable", "done"])
      assert.isTrue(transport.ended)
      assert.strictEqual(transport.failure?.reason, "Closed")
    })
  )

  it.live("a wait times out after its own deadline, also when an earlier wait's timer is still armed", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      // The first wait arms a timer for 300 ms and ends early, with bytes.
      const first = yield* Effect.forkChild(nextEvent(transport, 300))
      yield* Effect.sleep("50 millis")
      client.write("x")
      yield* until(() => first.pollUnsafe() !== undefined, "the first wait to end")
      transport.poll(10)
      yield* Effect.sleep("100 millis")
      // The second starts ~150 ms in: the first's timer fires at 300, which is early for it.
      const started = performance.now()
      const event = yield* within(nextEvent(transport, 300), "2 seconds", "the second wait's timeout")
      const waited = performance.now() - started
      assert.strictEqual(event, "timeout")
      assert.isAtLeast(waited, 290, `timed out after ${waited.toFixed(0)} ms, before its 300 ms`)
      assert.isBelow(waited, 1000)
      // A timeout ends the wait, not the stream.
      assert.isFalse(transport.ended)
    })
  )

  it.live("a cancelled wait is not called back, and the bytes stay for the next", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      const events: Array<Connection.ReadyEvent> = []
      const cancel = transport.awaitReadable(50, (event) => events.push(event))
      cancel()
      client.write("kept")
      yield* until(() => server.bytesRead === 4, "the bytes to arrive")
      yield* Effect.sleep("100 millis")
      assert.deepStrictEqual(events, [])
      assert.strictEqual(text(transport.poll(10)), "kept")
    })
  )

  it.live("a reset by the peer ends the stream as Closed; a local socket error as Error, with its cause", () =>
    Effect.gen(function* () {
      const reset = yield* pair()
      const peerGone = NodeConnection.makeTransport(reset.server)
      const waiting = yield* Effect.forkChild(nextEvent(peerGone))
      reset.client.resetAndDestroy()
      yield* until(() => waiting.pollUnsafe() !== undefined, "the reset to end the wait")
      assert.strictEqual(peerGone.failure?.reason, "Closed")

      const broken = yield* pair()
      const local = NodeConnection.makeTransport(broken.server)
      const cause = Object.assign(new Error("the disk is on fire"), { code: "EFIRE" })
      broken.server.destroy(cause)
      yield* until(() => local.ended, "the error to end the stream")
      const failure = local.failure!
      assert.strictEqual(failure.reason, "Error")
      assert.strictEqual(failure.cause, cause)
      // Built once, on first use.
      assert.strictEqual(local.failure, failure)

      const uncoded = yield* pair()
      const plain = NodeConnection.makeTransport(uncoded.server)
      uncoded.server.destroy(new Error("no code"))
      yield* until(() => plain.ended, "the error to end the stream")
      assert.strictEqual(plain.failure?.reason, "Error")
    })
  )

  it.live("past the high-water mark with nobody waiting, reading stops; the next wait resumes it", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      client.write(Buffer.alloc(server.readableHighWaterMark * 4, 0x61))
      yield* until(() => server.isPaused(), "reading to stop")
      // Drained below the mark by polls, it stays stopped until somebody waits.
      let taken = 0
      for (let chunk = transport.poll(1024); chunk !== undefined; chunk = transport.poll(1024)) taken += chunk.length
      assert.isTrue(server.isPaused())
      assert.isAbove(taken, 0)
      const event = yield* within(nextEvent(transport, 1000), "1 second", "more bytes")
      assert.strictEqual(event, "readable")
      assert.isFalse(server.isPaused())
    })
  )

  it.live("writes fail with LocalClosed once the socket is closed, ended or destroyed", () =>
    Effect.gen(function* () {
      const closed = yield* pair()
      const a = NodeConnection.makeTransport(closed.server)
      assert.isTrue(a.write("ok"))
      a.close()
      assert.strictEqual((a.write("late") as PoolError.ConnectionError).reason, "LocalClosed")

      const ended = yield* pair()
      const b = NodeConnection.makeTransport(ended.server)
      ended.server.end()
      assert.strictEqual((b.write("late") as PoolError.ConnectionError).reason, "LocalClosed")

      const destroyed = yield* pair()
      const c = NodeConnection.makeTransport(destroyed.server)
      destroyed.server.destroy()
      assert.strictEqual((c.write("late") as PoolError.ConnectionError).reason, "LocalClosed")
    })
  )

  it.live("awaitWritable: at once when nothing is held back, or with the failure once the socket is gone", () =>
    Effect.gen(function* () {
      const { server } = yield* pair()
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
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      client.pause()
      const drainListeners = server.listenerCount("drain")
      // More than the kernel's buffers take: the rest waits in Node's.
      assert.isFalse(transport.write(Buffer.alloc(32 * 1024 * 1024)))
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
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server)
      client.pause()
      assert.isFalse(transport.write(Buffer.alloc(32 * 1024 * 1024)))
      const waiting = yield* Effect.forkChild(writable(transport, 60_000))
      yield* Effect.sleep("20 millis")
      client.resetAndDestroy()
      const exit = yield* within(Fiber.await(waiting), "2 seconds", "the reset to end the wait")
      assert.isTrue(exit._tag === "Success" && exit.value?.reason === "Closed")
    })
  )

  it.live("cork holds a synchronous run's writes and sends them together; corking twice uncorks once", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
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

  it.live("close: flushes, half-closes, drops what the peer still sends, and ends when the peer does", () =>
    Effect.gen(function* () {
      const { server, client } = yield* pair()
      const transport = NodeConnection.makeTransport(server, { lingerMillis: 60_000 })
      const got = received(client)
      let clientEnded = false
      client.on("end", () => {
        clientEnded = true
      })
      client.write("unread")
      yield* until(() => server.bytesRead === 6, "the bytes to arrive")
      transport.write("bye")
      transport.close()
      transport.close()
      assert.isTrue(transport.ended)
      assert.strictEqual(transport.failure?.reason, "LocalClosed")
      assert.isUndefined(transport.poll(100))
      yield* until(() => clientEnded && got() === "bye", "the reply and the half-close")
      // Still reading (and dropping) what the peer sends, so its end is seen.
      client.write("more")
      client.end()
      // Long before lingerMillis.
      yield* until(() => server.destroyed, "the socket to close once the peer ended")
      assert.isUndefined(transport.poll(100))
    })
  )

  it.live("close after the peer ended needs no linger; abort drops the connection at once", () =>
    Effect.gen(function* () {
      const first = yield* pair()
      const ended = NodeConnection.makeTransport(first.server, { lingerMillis: 60_000 })
      first.client.end()
      yield* within(nextEvent(ended), "1 second", "the peer's end")
      ended.close()
      yield* until(() => first.server.destroyed, "the socket to close")

      const second = yield* pair()
      const aborted = NodeConnection.makeTransport(second.server)
      // The peer half-open: the end of the stream is what it sees (a FIN or a reset).
      let clientClosed = false
      const gone = () => {
        clientClosed = true
      }
      second.client.on("end", gone)
      second.client.on("close", gone)
      second.client.resume()
      aborted.write("dropped?")
      aborted.abort()
      assert.isTrue(second.server.destroyed)
      assert.strictEqual(aborted.failure?.reason, "LocalClosed")
      yield* until(() => clientClosed, "the peer to see the connection go")
    })
  )

  it.live("disables Nagle's algorithm unless told not to", () =>
    Effect.gen(function* () {
      const first = yield* pair()
      const on = vi.spyOn(first.server, "setNoDelay")
      NodeConnection.makeTransport(first.server)
      assert.deepStrictEqual(on.mock.calls, [[true]])
      const second = yield* pair()
      const off = vi.spyOn(second.server, "setNoDelay")
      NodeConnection.makeTransport(second.server, { noDelay: false })
      assert.deepStrictEqual(off.mock.calls, [])
    })
  )
})
