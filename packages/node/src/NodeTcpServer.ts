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

import type * as Net from "node:net"
import type * as Tls from "node:tls"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Accept from "./internal/accept.ts"
import * as AcceptErrors from "./internal/acceptErrors.ts"
import * as Linger from "./internal/linger.ts"
import { listen } from "./internal/listen.ts"
import { listenerDefaults as defaults } from "./internal/listenerDefaults.ts"
import * as Pending from "./internal/pending.ts"
import * as Signals from "./internal/signals.ts"
import * as TlsPolicy from "./internal/tls.ts"
import type * as NodeConnection from "./NodeConnection.ts"
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
     * load (a key that does not match its certificate, a `ca` without a certificate, say) fails with
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

/** What the server keeps once made: read by its service, `reloadTls` and the finalizer. */
interface ServerState {
  readonly options: Options
  /** The address asked for, as errors name it. */
  readonly where: string
  /** What logs call this server: the address asked for, then the one bound (with its real port). */
  bound: string
  /** The TLS options in force, the defaults filled in; `reloadTls` replaces them. */
  tls: Tls.TlsOptions | undefined
  draining: boolean
}

// `tls` with the defaults filled in. A key that does not match its certificate, or a `ca` that holds none, fails
// here, not at every handshake.
const checkedTls = (options: Options, where: string): Effect.Effect<Tls.TlsOptions | undefined, ListenError> => {
  if (options.tls === undefined) return Effect.succeed(undefined)
  const tls = TlsPolicy.withDefaults(options.tls, options.tlsClientAuth)
  return Effect.try({
    try: () => TlsPolicy.check(tls),
    catch: (cause) => new ListenError({ address: where, cause })
  }).pipe(Effect.as(tls))
}

const reloadTls = (
  state: ServerState,
  secureServer: Tls.Server | undefined,
  next: Tls.TlsOptions
): Effect.Effect<void, NodeTls.TlsError> =>
  Effect.gen(function* () {
    const { tls } = state
    if (tls === undefined) return yield* new NodeTls.TlsError({ reason: `${state.where} does not serve TLS` })
    const merged = TlsPolicy.withDefaults({ ...tls, ...next }, state.options.tlsClientAuth)
    yield* Effect.try({
      try: () => TlsPolicy.check(merged),
      catch: (cause) => new NodeTls.TlsError({ reason: (cause as Error).message })
    })
    secureServer?.setSecureContext(merged)
    state.tls = merged
  })

// The finalizer's first step: `draining` turns true, and the listener keeps accepting for `shutdownDelay`.
const startDraining = (state: ServerState): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.draining = true
    const delay = Duration.fromInputUnsafe(state.options.shutdownDelay ?? defaults.shutdownDelay)
    return Duration.isZero(delay) ? Effect.void : lameDuck(delay, describe(state.options))
  })

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
    const accept: Accept.Accept = {
      manager: yield* PoolManager.PoolManager,
      context: yield* Effect.context<never>(),
      busyReply: options.busyReply ?? defaults.busyReply,
      // This server's lingering sockets, bounded by one timer of its own (see internal/linger.ts).
      connectionOptions: Linger.withSweeper(options.connection, yield* Linger.make),
      gate: yield* makeGate(options),
      pending: yield* Pending.make(options.maxPendingConnections ?? defaults.maxPendingConnections),
      tlsClientAuth: options.tlsClientAuth,
      clients: new WeakMap(),
      connections: 0
    }
    const where = describe(options)
    const state: ServerState = { options, where, bound: where, tls: yield* checkedTls(options, where), draining: false }
    const secureServer =
      state.tls === undefined
        ? undefined
        : Accept.makeSecureServer(accept, state.tls, yield* TlsPolicy.handshakeFailures(() => state.bound))
    const server = yield* listen(Accept.makeListener(accept, secureServer), listenOptionsOf(options), (bound) => {
      const address = bound.address()
      if (address !== null) options.onListening?.(address)
    }).pipe(Effect.mapError((cause) => new ListenError({ address: where, cause })))
    const address = toSocketAddress(server.address(), options)
    if (options.path === undefined) state.bound = String(address)
    yield* AcceptErrors.watch(server, state.bound)
    // Added after the listener, so it runs before the listener closes.
    yield* Effect.addFinalizer(() => startDraining(state))
    return NodeTcpServer.of({
      address,
      draining: Effect.sync(() => state.draining),
      connections: Effect.sync(() => accept.connections),
      proxyRejected: accept.gate?.rejected ?? Effect.succeed(noRejections),
      reloadTls: (next) => reloadTls(state, secureServer, next)
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
 *   conn.write(len > 0 ? "OK" : "ERROR")
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
 * const Pool = PoolManager.layer({}, (conn) => conn.write("OK"))
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
    // libuv reports a unix socket whose folder is missing or not writable as
    // EACCES too, where the port hint would mislead.
    const unix = this.address.startsWith("unix:")
    const hint =
      code === "EADDRINUSE"
        ? unix
          ? ": the path is in use (another server listens there, or a stale socket file is left)"
          : ": the address is in use (pick another port, or 0 for any free one)"
        : code === "EACCES"
          ? unix
            ? ": permission denied (the socket's folder must exist and be writable)"
            : ": permission denied (ports below 1024 need privileges)"
          : ""
    return `cannot listen on ${this.address}${hint} (${String(this.cause)})`
  }
}
