/**
 * The pool manager: the Go original's `Manager` (SPEC.md, at the repository
 * root) as an Effect service. This module is its face; the implementation is
 * in `internal/manager.ts`, and ARCHITECTURE.md describes how it works.
 *
 * `make` creates a stopped manager (the Go original's `CreateManager`);
 * `start` prespawns `minWorkersCount` workers and starts the idle-worker
 * reaper; `put` hands a connection to a free worker (the most recently idle
 * first), else to a new one while under `maxWorkersCount`, else fails with
 * "can't put, pool is busy" at once (or, under the `"queue"` policy, after
 * waiting); `setConfig` changes the configuration while running; `stop`
 * drains gracefully and can be followed by `start` again. `layer` builds a
 * started manager and stops it on release.
 *
 * Design: the config lives in a `Ref`; admission caps the connections served
 * at `maxWorkersCount` (live); workers are items of a scoped `Pool`, borrowed
 * once per connection — never per message; each connection is served by its
 * own fiber.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Connection } from "./Connection.ts"
import * as internal from "./internal/manager.ts"
import type * as ManagerConfig from "./ManagerConfig.ts"
import type {
  AddressLimitError,
  AlreadyRunningError,
  ConfigError,
  NotRunningError,
  PoolBusyError
} from "./PoolError.ts"

/**
 * The callback run for every message (the Go original's
 * `func(conn net.Conn, requestBody []byte, requestBodyLen int)`). A failure or
 * defect is logged and counted, and closes that connection only. `state` is
 * the connection's own state when the callback is given with `withState`
 * (since 0.2.0).
 *
 * The effect returned runs in the transport's event that delivered the
 * message, which saves resuming the connection's fiber per message:
 * `conn.write(reply)` returned as it is (for a reply of up to 256 bytes) is
 * written there, a success such as `Effect.void` is done, and any other
 * effect runs in a fiber of its own, forked with the connection fiber's
 * services and span. What does not complete at once (a write waiting for a
 * slow client, a sleep) the connection's fiber waits for before it takes the
 * next message, and a drain timeout interrupts it. A fiber the effect forks
 * with `Effect.forkChild` ends with it; use `Effect.forkDetach` for work that
 * outlives the message (since 0.2.0).
 *
 * @category models
 * @since 0.1.0
 */
export type Callback<E = never, R = never, S = void> = (
  conn: Connection,
  requestBody: Uint8Array,
  requestBodyLen: number,
  state: S
) => Effect.Effect<void, E, R>

/**
 * A callback that answers without an Effect: it runs synchronously, in the
 * transport's event that delivered the message, outside any fiber. Build it
 * with `syncCallback`.
 *
 * @category models
 * @since 0.1.0
 */
export interface SyncCallback<S = void> {
  readonly _tag: "SyncCallback"
  /**
   * Answers one message, with the same arguments as a `Callback` (`state` since 0.2.0); what it throws closes the
   * connection.
   */
  readonly run: (conn: Connection, requestBody: Uint8Array, requestBodyLen: number, state: S) => void
}

/**
 * Marks `run` as a synchronous callback: the fast path for servers whose
 * answer needs no waiting. It writes with `conn.writeNow(data)`, which
 * queues the bytes at once (it returns `false` when the transport is full, and
 * the bytes are queued all the same; return to Effect callbacks if you must
 * wait), and closes with `conn.closeNow()`. It runs in the transport's event
 * that delivered the message, so a message costs no fiber resumption, the
 * largest per-message cost an Effect callback adds (BENCHMARKS.md, "What each
 * optimisation bought", has what it is worth). Everything else is
 * as for an Effect callback: deadlines, limits, metrics, and a `run` that
 * throws is logged and counted and closes its connection.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 *
 * const OK = new TextEncoder().encode("OK")
 * const Pool = PoolManager.layer(
 *   { maxWorkersCount: 10 },
 *   PoolManager.syncCallback((conn, _body, len) => {
 *     conn.writeNow(len > 0 ? OK : "ERROR")
 *   })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const syncCallback = <S = void>(run: SyncCallback<S>["run"]): SyncCallback<S> => ({ _tag: "SyncCallback", run })

/**
 * A callback with state for each connection, built with `withState`.
 *
 * @category models
 * @since 0.2.0
 */
export interface Stateful<S, E = never, R = never> {
  readonly _tag: "Stateful"
  /** Makes a connection's state when a worker takes it; may add finalizers to the connection's `Scope`. */
  readonly init: (conn: Connection) => Effect.Effect<S, E, R | Scope.Scope>
  /** The callback, given the state as its fourth argument. */
  readonly handler: Callback<E, R, S> | SyncCallback<S>
}

/**
 * State for one connection's life (a Redis `SELECT`ed database, an
 * authenticated user, a session): `init` runs when a worker takes the
 * connection, in a `Scope` that is closed (its finalizers run) when the
 * connection ends, and the state it returns is the fourth argument of every
 * call of `handler`, an Effect callback or a `syncCallback`. An `init` that
 * fails is logged and counted as a callback failure, and closes that
 * connection only. Mutable state is the usual choice (an object whose fields
 * the handler sets), since the handler runs for one message at a time.
 *
 * Two forms: `withState(init, handler)`, and `withState(init)(handler)`. Both
 * infer the state's type from `init` for an Effect handler; for a
 * `syncCallback` handler use the second form, where TypeScript knows the
 * state's type before it reads the handler (in the first it would need an
 * annotation on the handler's `state` parameter).
 *
 * @example
 * ```ts
 * import { Framing, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * // Each connection counts its own messages; the log line comes when it ends.
 * const Pool = PoolManager.layer(
 *   { framing: Framing.lines() },
 *   PoolManager.withState(
 *     (conn) =>
 *       Effect.acquireRelease(Effect.succeed({ seen: 0 }), (state) =>
 *         Effect.log(`${conn.remoteAddress} sent ${state.seen} lines`)
 *       ),
 *     (conn, _line, _len, state) => {
 *       state.seen++
 *       return conn.write(`${state.seen}\n`)
 *     }
 *   )
 * )
 *
 * // A synchronous handler: the curried form infers `state` for it.
 * const SyncPool = PoolManager.layer(
 *   { framing: Framing.lines() },
 *   PoolManager.withState(() => Effect.succeed({ seen: 0 }))(
 *     PoolManager.syncCallback((conn, _line, _len, state) => {
 *       conn.writeNow(`${++state.seen}\n`)
 *     })
 *   )
 * )
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const withState: {
  <S, E1 = never, R1 = never>(
    init: (conn: Connection) => Effect.Effect<S, E1, R1>
  ): <E2 = never, R2 = never>(
    handler: Callback<E2, R2, S> | SyncCallback<S>
  ) => Stateful<S, E1 | E2, Exclude<R1, Scope.Scope> | R2>
  <S, E1 = never, R1 = never, E2 = never, R2 = never>(
    init: (conn: Connection) => Effect.Effect<S, E1, R1>,
    handler: Callback<E2, R2, S> | SyncCallback<S>
  ): Stateful<S, E1 | E2, Exclude<R1, Scope.Scope> | R2>
} = ((...args: [init: unknown, handler?: unknown]) =>
  args.length === 1
    ? (handler: unknown) => ({ _tag: "Stateful", init: args[0], handler })
    : { _tag: "Stateful", init: args[0], handler: args[1] }) as any

/**
 * A snapshot of the manager. Counts marked "total" are since `make`.
 *
 * @category models
 * @since 0.1.0
 */
export interface PoolStats {
  /** Whether `put` admits connections (started and not stopping). */
  readonly running: boolean
  /** Workers alive now, busy or idle. */
  readonly workers: number
  /** Connections a worker owns now (counted from the moment the worker is lent). */
  readonly busy: number
  /** Workers waiting for a connection now (not those just spawned for a connection that waits for them). */
  readonly idle: number
  /** Total connections admitted by `put`. */
  readonly accepted: number
  /** Connections waiting for a worker now (`"queue"` policy). */
  readonly waiting: number
  /** Total connections refused by `put` because the pool was busy (at once, or after waiting). */
  readonly rejected: number
  /** Total connections refused by `put` because of `maxConnectionsPerAddress`. */
  readonly rejectedByAddress: number
  /** Total connections that waited `queueTimeout` in the queue and were refused. */
  readonly queueTimeouts: number
  /** Total messages handed to the callback. */
  readonly messages: number
  /** Total bytes of those messages. */
  readonly bytesRead: number
  /** Total bytes written to connections. */
  readonly bytesWritten: number
  /** Total callbacks that failed or died. */
  readonly callbackFailures: number
  /** Total connections closed because no message came, or a reply's write made no progress, within `clientsDeadline`. */
  readonly closedByDeadline: number
  /** Total connections closed because a message exceeded `maxMessageBytes` or its framing's maximum. */
  readonly closedBySize: number
  /**
   * Total connections closed for bad input to their framing: a bad length field, or a custom decoder that threw
   * or returned an invalid `consumed` (since 0.2.0).
   */
  readonly closedByFraming: number
  /** Total connections closed because the peer closed them or they failed. */
  readonly closedByPeer: number
  /** Total idle connections closed by `stop`. */
  readonly closedByStop: number
  /** Total connections closed after `maxMessagesPerConnection` messages. */
  readonly closedByMessageLimit: number
  /** Total sessions interrupted because `stop` ran past `drainTimeout`. */
  readonly interruptedByDrain: number
  /** Total workers spawned. */
  readonly spawned: number
  /** Total workers retired (reaped when idle, or ended by `stop`). */
  readonly retired: number
}

/**
 * The pool manager service.
 *
 * @category services
 * @since 0.1.0
 */
export class PoolManager extends Context.Service<
  PoolManager,
  {
    /** Starts the manager: prespawns `minWorkersCount` workers and the reaper. */
    readonly start: Effect.Effect<void, AlreadyRunningError>
    /**
     * Hands `conn` to a worker; returns once a worker owns it. Under the default
     * `"reject"` policy it never waits for capacity; under `"queue"` it waits up
     * to `queueTimeout`, and the wait can be interrupted. The hand-over is
     * atomic: when `put` fails or is interrupted, the pool has not touched
     * `conn` and the caller still owns it.
     */
    readonly put: (conn: Connection) => Effect.Effect<void, PoolBusyError | NotRunningError | AddressLimitError>
    /** The current configuration. */
    readonly config: Effect.Effect<ManagerConfig.ManagerConfig>
    /** Validates `input`, applies it over the current configuration, and returns the result. */
    readonly setConfig: (input: ManagerConfig.Input) => Effect.Effect<ManagerConfig.ManagerConfig, ConfigError>
    /** Stops admitting, drains (up to `drainTimeout`), and ends every worker. */
    readonly stop: Effect.Effect<void>
    /** A snapshot of the manager's state and counters. */
    readonly stats: Effect.Effect<PoolStats>
  }
>()("@pool-manager/core/PoolManager") {}

/**
 * Creates a stopped manager (the Go original's `CreateManager`). Closing the scope
 * stops it gracefully.
 *
 * @example
 * ```ts
 * import { MemoryConnection, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.make({ minWorkersCount: 2, maxWorkersCount: 4 }, (conn, _body, len) =>
 *     Effect.orDie(conn.write(len > 0 ? "OK" : "ERROR"))
 *   )
 *   yield* manager.start
 *   // An in-memory connection and its client side; NodeConnection.make gives
 *   // the same Connection for a node:net socket.
 *   const { client, connection } = yield* MemoryConnection.make()
 *   yield* manager
 *     .put(connection)
 *     .pipe(Effect.catchTag("PoolBusyError", () => Effect.orDie(connection.write("ERROR_SERVER_BUSY"))))
 *   yield* client.send("HI!")
 *   const reply = yield* client.receiveText // "OK"
 *   yield* manager.setConfig({ maxWorkersCount: 10 }) // applied while running
 *   const { busy } = yield* manager.stats // 1: the connection stays with its worker
 *   yield* manager.stop
 *   return { reply, busy }
 * }).pipe(Effect.scoped) // closing the scope would stop the manager too
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: <E = never, R = never>(
  config: ManagerConfig.Input,
  callback: Callback<E, R> | SyncCallback | Stateful<any, E, R>
) => Effect.Effect<PoolManager["Service"], ConfigError, Scope.Scope | R> = (config, callback) =>
  Effect.map(internal.make(config, callback), PoolManager.of)

/**
 * A started manager as a layer: built with `make`, started at once, stopped
 * gracefully when the layer is released.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { Context, Effect, Layer } from "effect"
 *
 * class Greeter extends Context.Service<Greeter, { readonly greet: (name: string) => string }>()("app/Greeter") {}
 *
 * // The callback's requirements become the layer's:
 * // Layer<PoolManager, ConfigError, Greeter>
 * const Pool = PoolManager.layer({ maxWorkersCount: 100, clientsDeadline: "10 seconds" }, (conn, body) =>
 *   Effect.gen(function* () {
 *     const greeter = yield* Greeter
 *     yield* conn.write(greeter.greet(new TextDecoder().decode(body)))
 *   })
 * )
 *
 * // Started when built, stopped gracefully (drained) when released.
 * const App = Pool.pipe(Layer.provide(Layer.succeed(Greeter, { greet: (name) => `hello ${name}` })))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <E = never, R = never>(
  config: ManagerConfig.Input,
  callback: Callback<E, R> | SyncCallback | Stateful<any, E, R>
): Layer.Layer<PoolManager, ConfigError, R> =>
  Layer.effect(
    PoolManager,
    Effect.tap(make(config, callback), (manager) => Effect.orDie(manager.start))
  )
