/**
 * The linger of a gracefully closed socket: after `close` half-closes it, it
 * stays open (discarding what the peer still sends) until the peer closes
 * too, or until its linger time is up and it is destroyed.
 *
 * A `Sweeper` bounds the lingers of one server's sockets with one interval
 * timer instead of a timer per closed connection (a stop closes thousands at
 * once). `NodeTcpServer` makes one per server, in its scope, so two servers
 * share nothing; the timer runs only while one of its sockets lingers, and
 * stops as soon as the last one is gone. A socket closed without a sweeper
 * (`NodeConnection.make` on a listener of the caller's own) gets a timer of
 * its own, so no state outlives a connection at module level.
 */
import type * as Net from "node:net"
import { performance } from "node:perf_hooks"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

// Destroyed between its linger time and that time plus this after the close began.
const sweepMillis = 250

/** The lingering sockets of one owner (a server), and the timer that destroys the overdue ones. */
export class Sweeper {
  // Each lingering socket, with the time (performance.now()) it must be destroyed by.
  readonly lingering = new Map<Net.Socket, number>()
  timer: NodeJS.Timeout | undefined = undefined
  // A listener of each lingering socket's `close`, bound to this sweeper.
  readonly forget: (this: Net.Socket) => void

  constructor() {
    const sweeper = this
    // Through a local, as every closure stored on a property is (lint/noClosureOnProperty.grit).
    const forget = function (this: Net.Socket) {
      sweeper.lingering.delete(this)
      // The last one gone: no timer is left waiting for nothing.
      if (sweeper.lingering.size === 0) sweeper.stop()
    }
    this.forget = forget
  }

  readonly sweep = (): void => {
    const now = performance.now()
    for (const [socket, due] of this.lingering) {
      if (due <= now) {
        this.lingering.delete(socket)
        socket.destroy()
      }
    }
    if (this.lingering.size === 0) this.stop()
  }

  /** Destroys `socket` `millis` from now (give or take the sweep), unless it closes before. */
  linger(socket: Net.Socket, millis: number): void {
    this.lingering.set(socket, performance.now() + millis)
    socket.once("close", this.forget)
    if (this.timer === undefined) {
      this.timer = setInterval(this.sweep, sweepMillis)
      this.timer.unref()
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}

/**
 * A sweeper for the scope's sockets. Its timer never outlives the sockets it
 * waits for: when the scope closes it is cleared if none lingers. Sockets
 * lingering then, and those closed afterwards (a server's pool drains after
 * its listener closed), are still bounded: the timer runs until the last of
 * them is gone, and not a turn longer.
 */
export const make: Effect.Effect<Sweeper, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => new Sweeper()),
  (sweeper) =>
    Effect.sync(() => {
      if (sweeper.lingering.size === 0) sweeper.stop()
    })
)

// The sweeper travels to the connection on its options, under a key the
// public `NodeConnection.Options` type does not show.
const key = Symbol.for("@pool-manager/node/internal/linger/Sweeper")

/** `options` with `sweeper` for the connections made with them (one object per server, not per connection). */
export const withSweeper = <O extends object>(options: O | undefined, sweeper: Sweeper): O =>
  ({ ...options, [key]: sweeper }) as O

/** The sweeper `withSweeper` put on `options`, if any. */
export const sweeperOf = (options: object | undefined): Sweeper | undefined =>
  (options as { readonly [key]?: Sweeper } | undefined)?.[key]

/** `socket`'s linger, bounded by `sweeper` or, without one, by a timer of its own. */
export const linger = (socket: Net.Socket, millis: number, sweeper: Sweeper | undefined): void => {
  if (sweeper !== undefined) {
    sweeper.linger(socket, millis)
    return
  }
  const timer = setTimeout(() => socket.destroy(), millis)
  timer.unref()
  socket.once("close", () => clearTimeout(timer))
}
