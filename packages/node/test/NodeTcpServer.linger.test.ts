/**
 * The linger after a graceful close (the server half-closes and waits for
 * the peer) is bounded by a sweeper timer each server owns: two servers get
 * one each, a timer runs only while one of its server's sockets lingers, and
 * a socket still lingering when its server closes is destroyed on time, after
 * which no timer is left.
 */
import * as Net from "node:net"
import { assert, describe, it, vi } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { NodeTcpServer } from "../src/index.ts"
import { portOf } from "./utils/client.ts"

// The sweeper's period; no other timer of the server repeats at it.
const sweepMillis = 250

/** Records the sweepers' interval timers: those set, and whether each was cleared. */
const watchIntervals = Effect.acquireRelease(
  Effect.sync(() => {
    const set = vi.spyOn(globalThis, "setInterval")
    const clear = vi.spyOn(globalThis, "clearInterval")
    const sweepers = () =>
      set.mock.calls.flatMap((call, i) =>
        call[1] === sweepMillis ? [set.mock.results[i]!.value as NodeJS.Timeout] : []
      )
    const cleared = (timer: NodeJS.Timeout) => clear.mock.calls.some((call) => call[0] === timer)
    return {
      sweepers,
      cleared,
      restore: () => {
        set.mockRestore()
        clear.mockRestore()
      }
    }
  }),
  (watch) => Effect.sync(watch.restore)
)

/** A server whose callback closes each connection after its first message, in a scope of its own. */
const startServer = (lingerMillis: number) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      NodeTcpServer.layer({ host: "127.0.0.1", port: 0, connection: { lingerMillis } }).pipe(
        Layer.provide(PoolManager.layer({ maxWorkersCount: 4 }, (conn) => conn.close))
      ),
      scope
    )
    return { port: portOf(Context.get(context, NodeTcpServer.NodeTcpServer).address), scope }
  })

/** A client that keeps its side open after the server's FIN, so the server's socket lingers. */
const halfOpenClient = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ socket: Net.Socket; state: { ended: boolean; closed: boolean } }>((resume) => {
      const state = { ended: false, closed: false }
      const socket = Net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
      socket.on("error", () => {})
      socket.on("end", () => {
        state.ended = true
      })
      socket.on("close", () => {
        state.closed = true
      })
      socket.once("connect", () => resume(Effect.succeed({ socket, state })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

const waitUntil = (condition: () => boolean, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 300; i++) {
      if (condition()) return
      yield* Effect.sleep("10 millis")
    }
    assert.fail(`timed out waiting for ${what}`)
  })

describe("NodeTcpServer linger", () => {
  it.live("each server has its own sweeper timer, running only while one of its sockets lingers", () =>
    Effect.gen(function* () {
      const watch = yield* watchIntervals
      const first = yield* startServer(5000)
      const second = yield* startServer(5000)

      const a = yield* halfOpenClient(first.port)
      a.socket.write("HI")
      yield* waitUntil(() => a.state.ended, "the first server to half-close")
      yield* waitUntil(() => watch.sweepers().length === 1, "the first server's sweeper")
      const b = yield* halfOpenClient(second.port)
      b.socket.write("HI")
      yield* waitUntil(() => b.state.ended, "the second server to half-close")
      // A sweeper shared by the two servers would already be running.
      yield* waitUntil(() => watch.sweepers().length === 2, "the second server's own sweeper")
      const [timerA, timerB] = watch.sweepers() as [NodeJS.Timeout, NodeJS.Timeout]

      // The first server's last lingering socket closes: its timer goes at once, the other's stays.
      a.socket.end()
      yield* waitUntil(() => a.state.closed, "the first connection to close")
      yield* waitUntil(() => watch.cleared(timerA), "the first sweeper to stop")
      assert.isFalse(watch.cleared(timerB))

      yield* Scope.close(first.scope, Exit.void)
      yield* Scope.close(second.scope, Exit.void)
      b.socket.end()
      yield* waitUntil(() => b.state.closed, "the second connection to close")
      yield* waitUntil(() => watch.cleared(timerB), "the second sweeper to stop")
      assert.strictEqual(watch.sweepers().length, 2)
    })
  )

  it.live("a socket still lingering when its server closes is destroyed on time; then no timer is left", () =>
    Effect.gen(function* () {
      const watch = yield* watchIntervals
      const server = yield* startServer(300)
      const client = yield* halfOpenClient(server.port)
      client.socket.write("HI")
      yield* waitUntil(() => client.state.ended, "the server to half-close")
      yield* waitUntil(() => watch.sweepers().length === 1, "the server's sweeper")
      const [timer] = watch.sweepers() as [NodeJS.Timeout]
      const closedAt = Date.now()
      yield* Scope.close(server.scope, Exit.void)
      // The client never closes its side: the sweeper destroys the socket after its linger (the
      // only other way out of it is the socket closing), then stops, its server long closed.
      yield* waitUntil(() => watch.cleared(timer), "the sweeper to destroy the socket and stop")
      assert.isAtMost(Date.now() - closedAt, 300 + 250 + 500)
      // Destroyed, not only forgotten: the server's side is gone, so what the
      // client sends now is answered with a reset, and its next write fails
      // (a lingering socket would take both in silence).
      client.socket.write("late")
      yield* Effect.sleep("50 millis")
      client.socket.write("later")
      yield* waitUntil(() => client.state.closed, "the reset of the destroyed socket")
      assert.strictEqual(watch.sweepers().length, 1)
    })
  )
})
