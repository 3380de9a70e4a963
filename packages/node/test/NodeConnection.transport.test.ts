/**
 * The read side of the socket transport under `NodeConnection` (the
 * `Connection.Transport` contract over `node:net`), driven directly over real
 * loopback sockets in this process: the order of buffered bytes, the events
 * of a wait and its deadline, how the stream ends, and reading paused while
 * nobody takes what arrives.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { Connection } from "@pool-manager/core"
import { Effect } from "effect"
import { NodeConnection } from "../src/index.ts"
import { nextEvent, socketPair, until } from "./utils/socketPair.ts"
import { within } from "./utils/within.ts"

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString())

describe("NodeConnection transport", () => {
  it.live("names its peer: host:port over IPv4, [host]:port over IPv6, unix over a unix socket", () =>
    Effect.gen(function* () {
      const v4 = yield* socketPair("127.0.0.1")
      const four = NodeConnection.makeTransport(v4.server)
      assert.strictEqual(four.remoteAddress, `127.0.0.1:${v4.client.localPort}`)
      assert.strictEqual(four.remoteHost, "127.0.0.1")
      const v6 = yield* socketPair("::1")
      const six = NodeConnection.makeTransport(v6.server)
      assert.strictEqual(six.remoteAddress, `[::1]:${v6.client.localPort}`)
      assert.strictEqual(six.remoteHost, "::1")
      const path = Path.join(Os.tmpdir(), `pool-manager-transport-${process.pid}-${Date.now()}.sock`)
      const unix = yield* socketPair({ path })
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
      const { server, client } = yield* socketPair()
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
      const { server, client } = yield* socketPair()
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
      const { server, client } = yield* socketPair()
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
      const { server, client } = yield* socketPair()
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
      const reset = yield* socketPair()
      const peerGone = NodeConnection.makeTransport(reset.server)
      const waiting = yield* Effect.forkChild(nextEvent(peerGone))
      reset.client.resetAndDestroy()
      yield* until(() => waiting.pollUnsafe() !== undefined, "the reset to end the wait")
      assert.strictEqual(peerGone.failure?.reason, "Closed")

      const broken = yield* socketPair()
      const local = NodeConnection.makeTransport(broken.server)
      const cause = Object.assign(new Error("the disk is on fire"), { code: "EFIRE" })
      broken.server.destroy(cause)
      yield* until(() => local.ended, "the error to end the stream")
      const failure = local.failure!
      assert.strictEqual(failure.reason, "Error")
      assert.strictEqual(failure.cause, cause)
      // Built once, on first use.
      assert.strictEqual(local.failure, failure)

      const uncoded = yield* socketPair()
      const plain = NodeConnection.makeTransport(uncoded.server)
      uncoded.server.destroy(new Error("no code"))
      yield* until(() => plain.ended, "the error to end the stream")
      assert.strictEqual(plain.failure?.reason, "Error")
    })
  )

  it.live("past the high-water mark with nobody waiting, reading stops; the next wait resumes it", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
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

  it.live("a wait shorter than an armed timer's is timed out on its own deadline", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      // A long wait (its deadline changed live, say) arms a timer for 10 s and ends early, with bytes.
      const first = yield* Effect.forkChild(nextEvent(transport, 10_000))
      client.write("x")
      yield* until(() => first.pollUnsafe() !== undefined, "the first wait to end")
      transport.poll(10)
      const started = performance.now()
      const event = yield* within(nextEvent(transport, 100), "2 seconds", "the short wait's timeout")
      assert.strictEqual(event, "timeout")
      assert.isAtLeast(performance.now() - started, 95)
    })
  )

  it.live("reading stops past the high-water mark every time nobody waits, not only the first", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const drain = () => {
        while (transport.poll(65_536) !== undefined) {}
      }
      for (let round = 1; round <= 2; round++) {
        client.write(Buffer.alloc(server.readableHighWaterMark * 4, 0x61))
        yield* until(() => server.isPaused(), `reading to stop (round ${round})`)
        drain()
        assert.strictEqual(yield* within(nextEvent(transport, 1000), "1 second", "more bytes"), "readable")
        assert.isFalse(server.isPaused())
        yield* Effect.sleep("50 millis")
        drain()
      }
    })
  )

  it.live("polls of part of a chunk keep the count of what is buffered true", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server)
      const size = server.readableHighWaterMark * 2
      client.write(Buffer.alloc(size, 0x61))
      let taken = 0
      // Byte by byte: nearly every poll takes part of a chunk.
      while (taken < size) {
        const chunk = transport.poll(1)
        if (chunk === undefined) yield* within(nextEvent(transport, 1000), "1 second", "the rest")
        else taken += chunk.length
      }
      // Nothing is buffered now: a few bytes with nobody waiting must not stop reading.
      client.write("tail")
      yield* until(() => server.bytesRead === size + 4, "the tail to arrive")
      assert.isFalse(server.isPaused(), "reading stopped with 4 bytes buffered")
    })
  )
})
