/**
 * A TCP (or unix socket) server that puts every accepted socket into the
 * `PoolManager` — the Go original's example server as a layer.
 *
 * Listening is plain `node:net` (`net.createServer`), not Effect's
 * `NodeSocketServer`, which forks a handler fiber per connection with an
 * Effect `Socket` to read from. That `Socket`'s `Reader.pull` takes the bytes
 * it returns and hands them over by resuming the pulling fiber, and the pool
 * needs two things it cannot give (see `NodeConnection`): a wait for bytes
 * that takes nothing (`Transport.awaitReadable`), after which the serve loop
 * polls as much as its framing has room for, in the step that frames it; and
 * a synchronous callback that answers inside the socket's `'data'` event,
 * outside any fiber. The listener also needs what `NodeSocketServer` keeps to
 * itself: the TCP socket before its TLS handshake (a PROXY header comes
 * first), the handshake's failures to count, and the TLS server's
 * `setSecureContext` for `reloadTls`. Run the layer under
 * `NodeRuntime.runMain` or `NodeCli.runMain`: SIGINT or SIGTERM interrupts
 * the program, which releases it.
 *
 * Each accepted socket goes to `put`; when the pool is busy or stopped, the
 * socket gets `busyReply` and is closed. With `proxyProtocol`, a PROXY
 * protocol header is read first (see `NodeProxyProtocol`) and the connection
 * carries the client's address. Releasing the layer marks the server
 * `draining`, keeps accepting for `shutdownDelay` (0 by default), then closes
 * the listener; the pool, released after it, drains what it admitted.
 *
 * With `reusePort` (in a process of `NodeCluster`'s `reuseport` mode,
 * `NodeCluster.serverOptions` sets it) each process binds the port itself and
 * the kernel spreads new connections over them, instead of one process
 * accepting them all.
 *
 * Faults are counted and logged (rate-limited), never fatal: accept errors
 * (`EMFILE`...) in `pool_accept_errors_total{code}`, failed TLS handshakes in
 * `pool_tls_handshake_failures_total{reason}`, connections over
 * `maxPendingConnections` in `pool_connections_rejected_total{reason="pending"}`.
 * TLS defaults to TLS 1.2 at least and Mozilla's "intermediate" suites (see
 * `NodeTls`), and `reloadTls` swaps the key and certificate for new handshakes.
 *
 * @since 0.1.0
 */

import * as Net from "node:net"
import * as Tls from "node:tls"
import type * as Connection from "@pool-manager/core/Connection"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as AcceptErrors from "./internal/acceptErrors.ts"
import * as Linger from "./internal/linger.ts"
import { listen } from "./internal/listen.ts"
import { listenerDefaults as defaults } from "./internal/listenerDefaults.ts"
import * as Pending from "./internal/pending.ts"
import * as Signals from "./internal/signals.ts"
import * as TlsPolicy from "./internal/tls.ts"
import * as NodeConnection from "./NodeConnection.ts"
import * as NodeProxyProtocol from "./NodeProxyProtocol.ts"
import * as NodeTls from "./NodeTls.ts"

/**
 * Options for `make` and `layer`: where to listen, and how to treat sockets.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1, as in the Go original's example). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one (default 6263, as in the Go original's example). Ignored with `path`. */
  readonly port?: number | undefined
  /** A unix domain socket path to listen on instead of host and port. */
  readonly path?: string | undefined
  /** Length of the kernel's queue of connections not yet accepted. */
  readonly backlog?: number | undefined
  /**
   * Bind with `SO_REUSEPORT` (Node's `reusePort`; Linux, FreeBSD and a few
   * others, TCP only): several processes may listen on the same port, and the
   * kernel spreads new connections over them. Default false; in a process
   * of `NodeCluster`, `NodeCluster.serverOptions` sets it in the `reuseport` mode.
   */
  readonly reusePort?: boolean | undefined
  /** Written to a socket the pool refuses (busy or stopped) before it is closed (default `ERROR_SERVER_BUSY`). */
  readonly busyReply?: string | Uint8Array | undefined
  /** Options for every accepted socket's `Connection`. */
  readonly connection?: NodeConnection.Options | undefined
  /**
   * Serve TLS: `node:tls` server options (`key`, `cert`, `ca`, ...). Connections
   * reach the pool once their handshake completed; a failed handshake destroys
   * the socket and is counted. `handshakeTimeout` defaults to 10 seconds,
   * `minVersion` to `TLSv1.2`, `ciphers` to `NodeTls.intermediateCiphers`.
   */
  readonly tls?: Tls.TlsOptions | undefined
  /**
   * Read a PROXY protocol header (v1 or v2) from each connection before it
   * reaches the pool, and use the client it names as the connection's
   * address (for `maxConnectionsPerAddress` and logs). `true` uses the
   * defaults of `NodeProxyProtocol.Options` (trusted proxies: loopback only).
   * With `tls`, the header comes first and TLS starts after it (HAProxy's
   * `send-proxy` in TCP mode in front of a TLS backend).
   */
  readonly proxyProtocol?: boolean | NodeProxyProtocol.Options | undefined
  /**
   * The lame-duck period (default 0): when the scope closes, `draining` turns
   * true at once (health checks should fail, see `NodeCli`) while the listener
   * keeps accepting and the pool keeps serving for this long, so a balancer
   * notices before connections are refused. Then the listener closes. A
   * SIGINT or SIGTERM arriving during the period ends it early.
   */
  readonly shutdownDelay?: Duration.Input | undefined
  /**
   * Client certificates with `tls` (default `none`): `request` asks for one
   * and admits a client without (or with one the `tls.ca` does not verify:
   * see `NodeTls.peerCertificate`), `require` closes a client without a
   * certificate the CA verified.
   */
  readonly tlsClientAuth?: NodeTls.ClientAuth | undefined
  /**
   * Most connections accepted but not yet handed to the pool, in a TLS
   * handshake or waiting for their PROXY header (default 1,024). Over it a new
   * connection is closed at once and counted in
   * `pool_connections_rejected_total{reason="pending"}`.
   */
  readonly maxPendingConnections?: number | undefined
  /**
   * Called once the server listens, with the bound address (a path for a
   * unix socket). `NodeCluster.serverOptions` sets it in a cluster's process.
   */
  readonly onListening?: ((address: Net.AddressInfo | string) => void) | undefined
}

/**
 * The listening server.
 *
 * @category services
 * @since 0.1.0
 */
export class NodeTcpServer extends Context.Service<
  NodeTcpServer,
  {
    /** The address the server is bound to (with the real port when 0 was asked for). */
    readonly address: NetAddress.SocketAddress
    /** Connections accepted from the listener so far, admitted or refused. */
    readonly connections: Effect.Effect<number>
    /** True from the moment the server began to stop (its lame-duck period, then the pool's drain). */
    readonly draining: Effect.Effect<boolean>
    /** Connections closed for their PROXY protocol header, by reason (all 0 without `proxyProtocol`). */
    readonly proxyRejected: Effect.Effect<Readonly<Record<NodeProxyProtocol.RejectReason, number>>>
    /**
     * Replaces the TLS key and certificate (or any of `tls`'s options) for new
     * handshakes; connections already open are untouched. A set that does not
     * load (a key that does not match its certificate, say) fails with
     * `NodeTls.TlsError` and the running one stays. Fails too when the server does not serve TLS.
     */
    readonly reloadTls: (tls: Tls.TlsOptions) => Effect.Effect<void, NodeTls.TlsError>
  }
>()("@pool-manager/node/NodeTcpServer") {}

// Where to listen, the defaults filled in: what `listen` is given, and what logs call the server.
const listenOptionsOf = (options: Options): Net.ListenOptions => ({
  ...(options.path !== undefined
    ? { path: options.path }
    : { host: options.host ?? defaults.host, port: options.port ?? defaults.port }),
  ...(options.backlog === undefined ? {} : { backlog: options.backlog }),
  ...(options.reusePort === true ? { reusePort: true } : {})
})

const describe = (options: Options): string => {
  const { path, host, port } = listenOptionsOf(options)
  return path !== undefined ? `unix:${path}` : `${host}:${port}`
}

const toSocketAddress = (address: string | Net.AddressInfo | null, options: Options): NetAddress.SocketAddress =>
  typeof address === "string" || address === null
    ? NetAddress.unixPathAddress(typeof address === "string" ? address : (options.path ?? ""))
    : NetAddress.inetAddressFromIpStringUnsafe(address.address, address.port)

const noRejections = Object.fromEntries(NodeProxyProtocol.rejectReasons.map((reason) => [reason, 0])) as Record<
  NodeProxyProtocol.RejectReason,
  number
>

const makeGate = (options: Options) => {
  const proxy = options.proxyProtocol
  if (proxy === undefined || proxy === false) return Effect.succeed(undefined)
  return NodeProxyProtocol.makeGate(proxy === true ? {} : proxy)
}

// Waits `delay`, or until the next SIGINT or SIGTERM (an operator in a hurry).
const lameDuck = (delay: Duration.Duration, where: string) =>
  Effect.log(
    `shutting down: still accepting on ${where} for ${Duration.format(delay)} before closing (signal again to skip)`
  ).pipe(Effect.andThen(Signals.nextStopSignal(Duration.toMillis(delay))))

/**
 * Listens, and puts every accepted socket into the `PoolManager` in context.
 * Closing the scope stops accepting and closes the listener.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  NodeTcpServer["Service"],
  ListenError | NodeProxyProtocol.ProxyProtocolError,
  PoolManager.PoolManager | Scope.Scope
> =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.PoolManager
    const context = yield* Effect.context<never>()
    const busyReply = options.busyReply ?? defaults.busyReply
    // This server's lingering sockets, bounded by one timer of its own (see internal/linger.ts).
    const connectionOptions = Linger.withSweeper(options.connection, yield* Linger.make)
    let connections = 0

    const refuse = (connection: Connection.Connection) => {
      // close() sends what is queued before it closes.
      connection.writeNow(busyReply)
      connection.closeNow()
    }

    // Every way put can fail (busy, stopped, address limit) leaves the
    // connection with us: answer and close it. The put usually completes
    // synchronously, so look at its exit before registering an observer.
    const admit = (socket: Net.Socket, client?: NodeConnection.Client) => {
      const connection = NodeConnection.make(socket, connectionOptions, client)
      const fiber = Effect.runForkWith(context)(manager.put(connection))
      const exit = fiber.pollUnsafe()
      if (exit === undefined) fiber.addObserver((exit) => exit._tag === "Failure" && refuse(connection))
      else if (exit._tag === "Failure") refuse(connection)
    }
    const gate = yield* makeGate(options)
    const where = describe(options)
    // What logs call this server: the address asked for, then the one bound (with its real port).
    let bound = where
    const pending = yield* Pending.make(options.maxPendingConnections ?? defaults.maxPendingConnections)
    let tls = options.tls === undefined ? undefined : TlsPolicy.withDefaults(options.tls, options.tlsClientAuth)
    if (tls !== undefined) {
      const checked = tls
      // A key that does not match its certificate fails here, not at every handshake.
      yield* Effect.try({
        try: () => TlsPolicy.check(checked),
        catch: (cause) => new ListenError({ address: where, cause })
      })
    }
    const handshakeFailed = tls === undefined ? undefined : yield* TlsPolicy.handshakeFailures(() => bound)
    // The client each socket's PROXY header named, for the TLS socket made over it.
    const clients = new WeakMap<Net.Socket, NodeConnection.Client | undefined>()
    // One TLS server does every handshake: it listens itself, or (behind the
    // PROXY header, which comes first) is handed each socket once its header
    // was read. Either way Node's server checks the handshake's timeout and
    // the client's certificate, and `setSecureContext` rotates the pair.
    const secureServer =
      tls === undefined
        ? undefined
        : Tls.createServer({ allowHalfOpen: true, noDelay: true, ...tls })
            .on("tlsClientError", (error, socket) => {
              if (!pending.wasRejected((socket as { _parent?: Net.Socket })._parent)) {
                handshakeFailed?.(error, socket.remoteAddress)
              }
              socket.destroy()
            })
            // The TCP connection, before its handshake: pending until it is secure.
            .on("connection", (socket: Net.Socket) => void pending.enter(socket))
            .on("secureConnection", (secure: Tls.TLSSocket) => {
              const raw = (secure as { _parent?: Net.Socket })._parent
              pending.leave(raw)
              // With `tlsClientAuth: "require"`: a certificate the CA did not verify is counted and closed.
              const unverified = TlsPolicy.unverified(secure, options.tlsClientAuth)
              if (unverified !== undefined) {
                handshakeFailed?.(unverified, secure.remoteAddress)
                return secure.destroy()
              }
              admit(secure, raw === undefined ? undefined : clients.get(raw))
            })
    const onConnection =
      gate === undefined
        ? () => {
            connections++
          }
        : (socket: Net.Socket) => {
            connections++
            if (!pending.enter(socket)) return
            gate.admit(socket, (client) => {
              if (secureServer !== undefined) {
                clients.set(socket, client)
                return secureServer.emit("connection", socket)
              }
              pending.leave(socket)
              admit(socket, client)
              // The gate left the socket paused, holding what followed the header.
              socket.resume()
            })
          }
    const listensTls = secureServer !== undefined && gate === undefined

    // allowHalfOpen: a client that sends its last message and half-closes
    // still gets the reply; the connection closes the socket itself.
    const listener = listensTls ? secureServer : Net.createServer({ allowHalfOpen: true, noDelay: true })
    listener.on("connection", onConnection)
    if (gate === undefined && secureServer === undefined)
      listener.on("connection", (socket: Net.Socket) => admit(socket))
    const server = yield* listen(listener, listenOptionsOf(options), (bound) => {
      const address = bound.address()
      if (address !== null) options.onListening?.(address)
    }).pipe(Effect.mapError((cause) => new ListenError({ address: where, cause })))
    const reloadTls = (next: Tls.TlsOptions) =>
      Effect.gen(function* () {
        if (tls === undefined) return yield* new NodeTls.TlsError({ reason: `${where} does not serve TLS` })
        const merged = TlsPolicy.withDefaults({ ...tls, ...next }, options.tlsClientAuth)
        yield* Effect.try({
          try: () => TlsPolicy.check(merged),
          catch: (cause) => new NodeTls.TlsError({ reason: (cause as Error).message })
        })
        secureServer?.setSecureContext(merged)
        tls = merged
      })
    const address = toSocketAddress(server.address(), options)
    if (options.path === undefined) bound = String(address)
    yield* AcceptErrors.watch(server, bound)
    let draining = false
    // Added after the listener, so it runs before the listener closes.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        draining = true
        const delay = Duration.fromInputUnsafe(options.shutdownDelay ?? defaults.shutdownDelay)
        return Duration.isZero(delay) ? Effect.void : lameDuck(delay, describe(options))
      })
    )
    return NodeTcpServer.of({
      address,
      draining: Effect.sync(() => draining),
      connections: Effect.sync(() => connections),
      proxyRejected: gate?.rejected ?? Effect.succeed(noRejections),
      reloadTls
    })
  })

/**
 * `make` as a layer. Provide it with a `PoolManager` layer:
 * `NodeTcpServer.layer(options).pipe(Layer.provide(PoolManager.layer(config, callback)))`.
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeTcpServer } from "@pool-manager/node"
 * import { Effect, Layer } from "effect"
 *
 * const Pool = PoolManager.layer({ minWorkersCount: 5, maxWorkersCount: 10 }, (conn, _body, len) =>
 *   Effect.ignore(conn.write(len > 0 ? "OK" : "ERROR"))
 * )
 *
 * // Port 0 picks a free port; the NodeTcpServer service says which one.
 * const Server = NodeTcpServer.layer({ host: "127.0.0.1", port: 0, busyReply: "BUSY\n" }).pipe(Layer.provide(Pool))
 *
 * const main = Effect.gen(function* () {
 *   const server = yield* NodeTcpServer.NodeTcpServer
 *   yield* Effect.log("listening", server.address)
 *   return yield* Effect.never
 * })
 *
 * // On SIGINT the listener closes first, then the pool drains what it admitted.
 * NodeRuntime.runMain(main.pipe(Effect.provide(Server)))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: (
  options?: Options
) => Layer.Layer<NodeTcpServer, ListenError | NodeProxyProtocol.ProxyProtocolError, PoolManager.PoolManager> = flow(
  make,
  Layer.effect(NodeTcpServer)
)

/**
 * The server could not listen: the address is in use, not permitted, or
 * invalid. `address` is what was asked for; `cause` is Node's error.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeTcpServer } from "@pool-manager/node"
 * import { Effect, Layer } from "effect"
 *
 * const Pool = PoolManager.layer({}, (conn) => Effect.ignore(conn.write("OK")))
 *
 * // Port taken: say so and fall back to any free port.
 * const Server = NodeTcpServer.layer({ port: 6263 }).pipe(
 *   Layer.catchTag("ListenError", (error) =>
 *     Layer.unwrap(Effect.as(Effect.logWarning(error.message), NodeTcpServer.layer({ port: 0 })))
 *   ),
 *   Layer.provide(Pool)
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  address: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    const hint =
      code === "EADDRINUSE"
        ? ": the address is in use (pick another port, or 0 for any free one)"
        : code === "EACCES"
          ? ": permission denied (ports below 1024 need privileges)"
          : ""
    return `cannot listen on ${this.address}${hint} (${String(this.cause)})`
  }
}
