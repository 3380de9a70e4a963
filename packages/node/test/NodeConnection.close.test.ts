/**
 * How a socket transport under `NodeConnection` ends, over real loopback
 * sockets in this process: a graceful close flushes, half-closes and waits
 * for the peer's end, reading and dropping what it still sends; a socket
 * whose peer never ends its side is destroyed once `lingerMillis` passed (not
 * before), by a timer of its own or by its server's sweeper, whose one timer
 * runs only while a socket lingers; an abort drops the connection at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeConnection } from "../src/index.ts"
import * as Linger from "../src/internal/linger.ts"
import { nextEvent, received, socketPair, until } from "./utils/socketPair.ts"
import { within } from "./utils/within.ts"

/** A pair whose client reads everything and never ends its side. */
const lingeringPeer = () => Effect.tap(socketPair(), ({ client }) => Effect.sync(() => client.resume()))

describe("NodeConnection close", () => {
  it.live("without a sweeper: destroyed once lingerMillis passed, not before", () =>
    Effect.gen(function* () {
      const { server } = yield* lingeringPeer()
      const transport = NodeConnection.makeTransport(server, { lingerMillis: 400 })
      const closedAt = performance.now()
      transport.close()
      yield* Effect.sleep("250 millis")
      assert.isFalse(server.destroyed, "destroyed before lingerMillis")
      yield* until(() => server.destroyed, "the socket to be destroyed", "1000 millis")
      assert.isAtLeast(performance.now() - closedAt, 390)
    })
  )

  it.live("with a sweeper: one timer while sockets linger, each destroyed on time, closed ones forgotten", () =>
    Effect.gen(function* () {
      const sweeper = yield* Linger.make
      const options = Linger.withSweeper({ lingerMillis: 600 }, sweeper)
      const slow = yield* lingeringPeer()
      const polite = yield* lingeringPeer()
      NodeConnection.makeTransport(slow.server, options).close()
      const closedAt = performance.now()
      const timer = sweeper.timer
      assert.isDefined(timer)
      assert.isFalse(timer!.hasRef(), "the sweeper keeps the process alive")
      NodeConnection.makeTransport(polite.server, options).close()
      assert.strictEqual(sweeper.timer, timer, "a second linger started a second timer")
      assert.strictEqual(sweeper.lingering.size, 2)
      // The polite peer closes its side: its socket closes and leaves the sweeper.
      polite.client.end()
      yield* until(() => polite.server.destroyed, "the polite peer's socket to close", "1000 millis")
      assert.strictEqual(sweeper.lingering.size, 1)
      assert.strictEqual(sweeper.timer, timer)
      // Two sweeps (250 ms apart) pass before its linger is due.
      yield* Effect.sleep(Math.max(0, closedAt + 520 - performance.now()))
      assert.isFalse(slow.server.destroyed, "destroyed before lingerMillis")
      yield* until(() => slow.server.destroyed, "the slow peer's socket to be destroyed", "1500 millis")
      assert.isAtLeast(performance.now() - closedAt, 590)
      // Nothing lingers: the timer is gone.
      yield* until(() => sweeper.timer === undefined, "the sweeper to stop", "500 millis")
      assert.strictEqual(sweeper.lingering.size, 0)
    })
  )

  it.live("the last lingering socket closing stops the sweeper's timer at once", () =>
    Effect.gen(function* () {
      const sweeper = yield* Linger.make
      const peer = yield* lingeringPeer()
      NodeConnection.makeTransport(peer.server, Linger.withSweeper({ lingerMillis: 60_000 }, sweeper)).close()
      assert.isDefined(sweeper.timer)
      peer.client.end()
      yield* until(() => peer.server.destroyed, "the socket to close", "1000 millis")
      assert.isUndefined(sweeper.timer)
    })
  )

  it.live("close: flushes, half-closes, drops what the peer still sends, and ends when the peer does", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
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
      const first = yield* socketPair()
      const ended = NodeConnection.makeTransport(first.server, { lingerMillis: 60_000 })
      first.client.end()
      yield* within(nextEvent(ended), "1 second", "the peer's end")
      ended.close()
      yield* until(() => first.server.destroyed, "the socket to close")

      const second = yield* socketPair()
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

  it.live("a close that had stopped reading reads again, so the peer's end is seen before the linger", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const transport = NodeConnection.makeTransport(server, { lingerMillis: 60_000 })
      client.write(Buffer.alloc(server.readableHighWaterMark * 4))
      yield* until(() => server.isPaused(), "reading to stop")
      transport.close()
      client.end()
      yield* until(() => server.destroyed, "the socket to close once the peer ended")
    })
  )

  it.live("a socket already ended by its peer, or already gone, does not linger in the sweeper", () =>
    Effect.gen(function* () {
      const sweeper = yield* Linger.make
      const options = Linger.withSweeper({ lingerMillis: 60_000 }, sweeper)
      const ended = yield* socketPair()
      const a = NodeConnection.makeTransport(ended.server, options)
      ended.client.end()
      yield* within(nextEvent(a, 1000), "1 second", "the peer's end")
      a.close()
      assert.strictEqual(sweeper.lingering.size, 0)
      const reset = yield* socketPair()
      const b = NodeConnection.makeTransport(reset.server, options)
      reset.client.resetAndDestroy()
      yield* until(() => reset.server.destroyed, "the reset to arrive")
      b.close()
      assert.strictEqual(sweeper.lingering.size, 0)
      assert.isUndefined(sweeper.timer)
    })
  )
})
