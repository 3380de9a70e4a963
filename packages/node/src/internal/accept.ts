/**
 * `NodeTcpServer`'s accept path: from the listener's `connection` event to
 * the pool's `put`, through the PROXY header's gate and the TLS handshake when
 * they are on (see "Node binding" in ARCHITECTURE.md). The handlers are
 * socket events, outside any fiber: they share one `Accept` record.
 */
import * as Net from "node:net"
import * as Tls from "node:tls"
import type * as Connection from "@pool-manager/core/Connection"
import type * as PoolManager from "@pool-manager/core/PoolManager"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as NodeConnection from "../NodeConnection.ts"
import type * as NodeProxyProtocol from "../NodeProxyProtocol.ts"
import type * as NodeTls from "../NodeTls.ts"
import type * as Pending from "./pending.ts"
import * as TlsPolicy from "./tls.ts"

/** What the accept path needs and keeps, shared by the listener's handlers and the TLS server's. */
export interface Accept {
  readonly manager: PoolManager.PoolManager["Service"]
  /** The server's context: each `put` is forked in it, from a socket event. */
  readonly context: Context.Context<never>
  readonly busyReply: string | Uint8Array
  readonly connectionOptions: NodeConnection.Options | undefined
  /** Reads the PROXY header first; none without `proxyProtocol`. */
  readonly gate: NodeProxyProtocol.Gate | undefined
  readonly pending: Pending.Pending
  readonly tlsClientAuth: NodeTls.ClientAuth | undefined
  /** The client each socket's PROXY header named, for the TLS socket made over it. */
  readonly clients: WeakMap<Net.Socket, NodeConnection.Client | undefined>
  /** Connections accepted from the listener so far, admitted or refused. */
  connections: number
}

const refuse = (connection: Connection.Connection, busyReply: string | Uint8Array): void => {
  // close() sends what is queued before it closes.
  connection.writeNow(busyReply)
  connection.closeNow()
}

/**
 * Wraps `socket` in a connection and puts it into the pool. Every way put can
 * fail (busy, stopped, address limit) leaves the connection with us: answer
 * and close it. The put usually completes synchronously, so look at its exit
 * before registering an observer.
 */
export const admit = (accept: Accept, socket: Net.Socket, client?: NodeConnection.Client): void => {
  const connection = NodeConnection.make(socket, accept.connectionOptions, client)
  const fiber = Effect.runForkWith(accept.context)(accept.manager.put(connection))
  const exit = fiber.pollUnsafe()
  if (exit === undefined) fiber.addObserver((exit) => exit._tag === "Failure" && refuse(connection, accept.busyReply))
  else if (exit._tag === "Failure") refuse(connection, accept.busyReply)
}

/**
 * The one TLS server that does every handshake: it listens itself, or (behind
 * the PROXY header, which comes first) is handed each socket once its header
 * was read. Either way Node's server checks the handshake's timeout and the
 * client's certificate, and `setSecureContext` rotates the pair.
 */
export const makeSecureServer = (
  accept: Accept,
  tls: Tls.TlsOptions,
  handshakeFailed: (error: unknown, peer: string | undefined) => void
): Tls.Server =>
  Tls.createServer({ allowHalfOpen: true, noDelay: true, ...tls })
    .on("tlsClientError", (error, socket) => {
      if (!accept.pending.wasRejected((socket as { _parent?: Net.Socket })._parent)) {
        handshakeFailed(error, socket.remoteAddress)
      }
      socket.destroy()
    })
    // The TCP connection, before its handshake: pending until it is secure.
    .on("connection", (socket: Net.Socket) => void accept.pending.enter(socket))
    .on("secureConnection", (secure: Tls.TLSSocket) => {
      const raw = (secure as { _parent?: Net.Socket })._parent
      accept.pending.leave(raw)
      // With `tlsClientAuth: "require"`: a certificate the CA did not verify is counted and closed.
      const unverified = TlsPolicy.unverified(secure, accept.tlsClientAuth)
      if (unverified !== undefined) {
        handshakeFailed(unverified, secure.remoteAddress)
        return secure.destroy()
      }
      admit(accept, secure, raw === undefined ? undefined : accept.clients.get(raw))
    })

/** A socket behind a PROXY header: pending until the gate read the header, then on to TLS or to the pool. */
const onGatedConnection = (
  accept: Accept,
  gate: NodeProxyProtocol.Gate,
  secureServer: Tls.Server | undefined,
  socket: Net.Socket
): void => {
  accept.connections++
  if (!accept.pending.enter(socket)) return
  gate.admit(socket, (client) => {
    if (secureServer !== undefined) {
      accept.clients.set(socket, client)
      return secureServer.emit("connection", socket)
    }
    accept.pending.leave(socket)
    admit(accept, socket, client)
    // The gate left the socket paused, holding what followed the header.
    socket.resume()
  })
}

/**
 * The server that listens, its handlers attached: the TLS server itself for
 * TLS without a PROXY header, else a plain `net.Server`.
 */
export const makeListener = (accept: Accept, secureServer: Tls.Server | undefined): Net.Server => {
  const { gate } = accept
  const onConnection =
    gate === undefined
      ? () => {
          accept.connections++
        }
      : (socket: Net.Socket) => onGatedConnection(accept, gate, secureServer, socket)
  const listensTls = secureServer !== undefined && gate === undefined
  // allowHalfOpen: a client that sends its last message and half-closes
  // still gets the reply; the connection closes the socket itself.
  const listener = listensTls ? secureServer : Net.createServer({ allowHalfOpen: true, noDelay: true })
  listener.on("connection", onConnection)
  if (gate === undefined && secureServer === undefined) {
    listener.on("connection", (socket: Net.Socket) => admit(accept, socket))
  }
  return listener
}
