/**
 * Two connected sockets for the tests of the socket transport: the one a
 * listener accepted (which the transport wraps) and its peer, both half-open
 * capable and with their errors handled, closed with the test's scope; and
 * the bounded waits those tests share.
 */
import * as Net from "node:net"
import type { Connection } from "@pool-manager/core"
import { type Duration, Effect } from "effect"
import { within } from "./within.ts"

export interface SocketPair {
  /** The accepted socket. */
  readonly server: Net.Socket
  /** Its peer, which stays open after the server's end until it ends itself. */
  readonly client: Net.Socket
}

/** A pair over a port of `host` (default 127.0.0.1), or over a unix socket at `{ path }`. */
export const socketPair = (host: string | { readonly path: string } = "127.0.0.1") =>
  Effect.acquireRelease(
    Effect.callback<SocketPair & { readonly listener: Net.Server }>((resume) => {
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

/** Polls `condition` every 5 ms; fails on an assertion naming `what` unless it holds within `bound`. */
export const until = (condition: () => boolean, what: string, bound: Duration.Input = "2 seconds") =>
  within(
    Effect.gen(function* () {
      while (!condition()) yield* Effect.sleep("5 millis")
    }),
    bound,
    what
  )

/** Everything `socket` receives from now on, as text (reading puts it in flowing mode). */
export const received = (socket: Net.Socket): (() => string) => {
  let got = ""
  socket.on("data", (chunk: Buffer) => {
    got += chunk.toString()
  })
  return () => got
}

/** Resolves with the first event `transport.awaitReadable` gives (cancelled if interrupted). */
export const nextEvent = (transport: Connection.Transport, timeoutMillis = Infinity) =>
  Effect.callback<Connection.ReadyEvent>((resume) => {
    const cancel = transport.awaitReadable(timeoutMillis, (event) => resume(Effect.succeed(event)))
    return Effect.sync(cancel)
  })
