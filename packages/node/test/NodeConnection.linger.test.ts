/**
 * The linger after a graceful close, in this process: a socket whose peer
 * never closes its side is destroyed once `lingerMillis` passed (not
 * before), by a timer of its own or by its server's sweeper, whose one timer
 * runs only while a socket lingers and forgets the sockets that closed.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeConnection } from "../src/index.ts"
import * as Linger from "../src/internal/linger.ts"
import { within } from "./utils/within.ts"

/** A server socket whose half-open peer reads everything and never ends its side; closed with the scope. */
const lingeringPeer = Effect.acquireRelease(
  Effect.callback<{ readonly server: Net.Socket; readonly client: Net.Socket; readonly listener: Net.Server }>(
    (resume) => {
      const listener = Net.createServer({ allowHalfOpen: true }, (server) => {
        server.on("error", () => {})
        resume(Effect.succeed({ server, client, listener }))
      })
      let client: Net.Socket
      listener.listen(0, "127.0.0.1", () => {
        client = Net.connect({ port: (listener.address() as Net.AddressInfo).port, allowHalfOpen: true })
        client.on("error", () => {})
        client.resume()
      })
    }
  ),
  ({ server, client, listener }) =>
    Effect.sync(() => {
      server.destroy()
      client.destroy()
      listener.close()
    })
)

const until = (condition: () => boolean, bound: number, what: string) =>
  within(
    Effect.gen(function* () {
      while (!condition()) yield* Effect.sleep("5 millis")
    }),
    `${bound} millis`,
    what
  )

describe("NodeConnection linger", () => {
  it.live("without a sweeper: destroyed once lingerMillis passed, not before", () =>
    Effect.gen(function* () {
      const { server } = yield* lingeringPeer
      const transport = NodeConnection.makeTransport(server, { lingerMillis: 400 })
      const closedAt = performance.now()
      transport.close()
      yield* Effect.sleep("250 millis")
      assert.isFalse(server.destroyed, "destroyed before lingerMillis")
      yield* until(() => server.destroyed, 1000, "the socket to be destroyed")
      assert.isAtLeast(performance.now() - closedAt, 390)
    })
  )

  it.live("with a sweeper: one timer while sockets linger, each destroyed on time, closed ones forgotten", () =>
    Effect.gen(function* () {
      const sweeper = yield* Linger.make
      const options = Linger.withSweeper({ lingerMillis: 600 }, sweeper)
      const slow = yield* lingeringPeer
      const polite = yield* lingeringPeer
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
      yield* until(() => polite.server.destroyed, 1000, "the polite peer's socket to close")
      assert.strictEqual(sweeper.lingering.size, 1)
      assert.strictEqual(sweeper.timer, timer)
      // Two sweeps (250 ms apart) pass before its linger is due.
      yield* Effect.sleep(Math.max(0, closedAt + 520 - performance.now()))
      assert.isFalse(slow.server.destroyed, "destroyed before lingerMillis")
      yield* until(() => slow.server.destroyed, 1500, "the slow peer's socket to be destroyed")
      assert.isAtLeast(performance.now() - closedAt, 590)
      // Nothing lingers: the timer is gone.
      yield* until(() => sweeper.timer === undefined, 500, "the sweeper to stop")
      assert.strictEqual(sweeper.lingering.size, 0)
    })
  )

  it.live("the last lingering socket closing stops the sweeper's timer at once", () =>
    Effect.gen(function* () {
      const sweeper = yield* Linger.make
      const peer = yield* lingeringPeer
      NodeConnection.makeTransport(peer.server, Linger.withSweeper({ lingerMillis: 60_000 }, sweeper)).close()
      assert.isDefined(sweeper.timer)
      peer.client.end()
      yield* until(() => peer.server.destroyed, 1000, "the socket to close")
      assert.isUndefined(sweeper.timer)
    })
  )
})
