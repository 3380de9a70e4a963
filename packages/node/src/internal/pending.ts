/**
 * The cap on connections accepted but not yet admitted to the pool: those in
 * a TLS handshake or waiting for their PROXY protocol header. They hold a
 * descriptor and memory while doing nothing the pool limits, so a client
 * opening many and never finishing would hold them all; over the cap a new
 * connection is closed at once and counted in
 * `pool_connections_rejected_total{reason="pending"}`.
 */
import type * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as CountersBy from "./countersBy.ts"

export interface Pending {
  /** Counts `socket` as pending until `leave(socket)` or its close; false (and closed) when over the cap. */
  readonly enter: (socket: Net.Socket) => boolean
  /** `socket` was admitted (or handed on): it no longer counts. */
  readonly leave: (socket: Net.Socket | undefined) => void
  readonly rejected: () => number
  /** Whether `socket` was closed for the cap (its TLS socket's error is not a handshake failure then). */
  readonly wasRejected: (socket: Net.Socket | undefined) => boolean
}

export const make = (max: number): Effect.Effect<Pending, never, Scope.Scope> =>
  Effect.gen(function* () {
    const open = new Set<Net.Socket>()
    const closed = new WeakSet<Net.Socket>()
    const counts = yield* CountersBy.make(
      "pool_connections_rejected_total",
      "Connections refused by put, by reason",
      "reason",
      ["pending"]
    )
    const leave = (socket: Net.Socket | undefined) => {
      if (socket !== undefined) open.delete(socket)
    }
    return {
      enter: (socket) => {
        if (open.has(socket)) return true
        if (open.size >= max) {
          counts.pending++
          closed.add(socket)
          socket.on("error", () => {})
          socket.destroy()
          return false
        }
        open.add(socket)
        socket.once("close", () => open.delete(socket))
        return true
      },
      leave,
      rejected: () => counts.pending,
      wasRejected: (socket) => socket !== undefined && closed.has(socket)
    }
  })
