/**
 * The pool manager: the spec's `Manager` as an Effect service.
 *
 * `make` creates a stopped manager (the spec's `CreateManager`); `start`
 * prespawns `minWorkersCount` workers and starts the idle-worker reaper;
 * `put` hands a connection to a free worker (the most recently idle first),
 * else to a new one while under `maxWorkersCount`, else fails with
 * "can't put, pool is busy" — it never waits; `setConfig` changes the
 * configuration while running; `stop` drains gracefully and can be followed by
 * `start` again. `layer` builds a started manager and stops it on release.
 *
 * Design: the config lives in a `Ref`; a `Semaphore` sized to
 * `maxWorkersCount` admits connections (resized live); workers are items of a
 * scoped `Pool` (see `internal/workers.ts`), borrowed once per connection —
 * never per message; each connection is served by its own fiber running the
 * loop in `internal/serve.ts`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Pool from "effect/Pool"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type { Connection } from "./Connection.ts"
import type { AdmissionError } from "./internal/admission.ts"
import * as Admission from "./internal/admission.ts"
import { withoutStack } from "./internal/errors.ts"
import * as Metrics from "./internal/metrics.ts"
import { serve } from "./internal/serve.ts"
import { type Env, makeCounters, type Run, type Session } from "./internal/state.ts"
import { ensureMin, idleCount, makePool } from "./internal/workers.ts"
import * as ManagerConfig from "./ManagerConfig.ts"
import {
  type AddressLimitError,
  AlreadyRunningError,
  type ConfigError,
  NotRunningError,
  type PoolBusyError
} from "./PoolError.ts"

/**
 * The callback run for every message (the spec's
 * `func(conn net.Conn, requestBody []byte, requestBodyLen int)`). A failure or
 * defect is logged and counted, and closes that connection only.
 *
 * @category models
 * @since 0.1.0
 */
export type Callback<E = never, R = never> = (
  conn: Connection,
  requestBody: Uint8Array,
  requestBodyLen: number
) => Effect.Effect<void, E, R>

/**
 * A callback that answers without an Effect: it runs synchronously, in the
 * transport's event that delivered the message, outside any fiber. Build it
 * with `syncCallback`.
 *
 * @category models
 * @since 0.1.0
 */
export interface SyncCallback {
  readonly _tag: "SyncCallback"
  /** Answers one message, with the same arguments as a `Callback`; what it throws closes the connection. */
  readonly run: (conn: Connection, requestBody: Uint8Array, requestBodyLen: number) => void
}

/**
 * Marks `run` as a synchronous callback: the fast path for servers whose
 * answer needs no waiting. It writes with `conn.transport.write(data)`, which
 * queues the bytes at once (it returns `false` when the transport is full, and
 * the bytes are queued all the same; return to Effect callbacks if you must
 * wait). A message then costs no fiber resumption, which on the benchmark's
 * 50 persistent connections was worth ~10% of throughput. Everything else is
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
 *     conn.transport.write(len > 0 ? OK : "ERROR")
 *   })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const syncCallback = (run: SyncCallback["run"]): SyncCallback => ({ _tag: "SyncCallback", run })

const isSyncCallback = (callback: Callback<unknown, unknown> | SyncCallback): callback is SyncCallback =>
  typeof callback === "object" && callback._tag === "SyncCallback"

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
  /** Connections being served now. */
  readonly busy: number
  /** Workers waiting for a connection now. */
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
  /** Total connections closed because a message exceeded `maxMessageBytes`. */
  readonly closedBySize: number
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
     * to `queueTimeout`. On failure the caller still owns `conn`.
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
 * Creates a stopped manager (the spec's `CreateManager`). Closing the scope
 * stops it gracefully.
 *
 * @example
 * ```ts
 * import { Connection, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.make({ minWorkersCount: 2, maxWorkersCount: 4 }, (conn, _body, len) =>
 *     Effect.orDie(conn.write(len > 0 ? "OK" : "ERROR"))
 *   )
 *   yield* manager.start
 *   // An in-memory connection and its client side; NodeConnection.make gives
 *   // the same Connection for a node:net socket.
 *   const { client, connection } = yield* Connection.makeMemory()
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
export const make = <E = never, R = never>(
  config: ManagerConfig.Input,
  callback: Callback<E, R> | SyncCallback
): Effect.Effect<PoolManager["Service"], ConfigError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const sync = isSyncCallback(callback) ? callback.run : undefined
    const configRef = yield* Ref.make(yield* ManagerConfig.make(config))
    const counters = makeCounters()
    const env: Env = {
      config: configRef,
      counters,
      admission: yield* Admission.make(configRef, counters),
      callback:
        sync === undefined
          ? (callback as Callback<unknown, unknown>)
          : (conn, body, len) => {
              sync(conn, body, len)
              return Effect.void
            },
      sync,
      // Workers run callbacks in the context `make` ran in, minus its Scope: a
      // callback's finalizers must not pile up in the manager's scope.
      context: Context.omit(Scope.Scope)(yield* Effect.context<R | Scope.Scope>()) as Context.Context<unknown>,
      configChanged: yield* Deferred.make<void>(),
      run: undefined,
      nextWorkerId: 0,
      callbackDuration: Metrics.makeDurationHistogram(),
      idleCount: () => (env.run === undefined ? 0 : idleCount(env.run.pool)),
      bytesWritten: () => {
        let total = env.counters.bytesWritten
        if (env.run !== undefined) for (const session of env.run.sessions) total += session.transport.bytesWritten
        return total
      }
    }
    yield* Metrics.register(env, yield* Effect.scope)
    // start and stop change the running state one at a time; setConfig calls
    // are serialised separately, so a long drain does not hold up a config change.
    const lifecycle = yield* Semaphore.make(1)
    const configLock = yield* Semaphore.make(1)
    const debug = (message: string, annotations: Record<string, unknown>) =>
      Ref.getUnsafe(env.config).debug ? Effect.logDebug(message).pipe(Effect.annotateLogs(annotations)) : Effect.void

    const start = lifecycle.withPermit(
      Effect.gen(function* () {
        if (env.run !== undefined) return yield* new AlreadyRunningError()
        const scope = yield* Scope.make()
        const run: Run = {
          pool: yield* makePool(env, scope),
          scope,
          sessions: new Set(),
          drained: yield* Deferred.make<void>(),
          stopping: false
        }
        yield* ensureMin(env, run)
        env.run = run
        yield* debug("pool manager started", ManagerConfig.toJson(Ref.getUnsafe(env.config)))
      })
    )

    const endSession =
      (run: Run, session: Session) =>
      (exit: Exit.Exit<void>): Effect.Effect<void> => {
        const transport = session.transport
        if (!session.leased) {
          // The pool refused to lend a worker (it only does so while shutting
          // down): put fails, and its caller keeps the connection.
          session.onLeased?.(false)
        } else {
          if (Exit.isFailure(exit)) {
            // Cut short by the drain timeout: drop what it had queued.
            env.counters.interruptedByDrain++
            transport.abort()
          } else {
            transport.close()
          }
          env.counters.bytesWritten += transport.bytesWritten
        }
        env.counters.busy--
        run.sessions.delete(session)
        if (run.stopping && run.sessions.size === 0) Deferred.doneUnsafe(run.drained, Effect.void)
        return env.admission.release(transport)
      }

    const notRunning = () => Effect.fail(withoutStack(() => new NotRunningError()))

    // The worker is borrowed with Pool.use inside the session's own fiber: no
    // Scope per connection, and the lease ends exactly when the session does.
    // The fiber starts at once, so with an idle worker the lease is taken
    // before it yields; only when a worker must be spawned does put wait for it.
    const admit = (run: Run, connection: Connection): Effect.Effect<void, NotRunningError> => {
      const session: Session = {
        transport: connection.transport,
        wake: undefined,
        fiber: undefined,
        leased: false,
        onLeased: undefined
      }
      // Registered before the worker is borrowed, so a stop that begins while a
      // worker is being spawned still waits for this connection.
      run.sessions.add(session)
      env.counters.busy++
      const served = Pool.use(run.pool, (worker) => {
        session.leased = true
        env.counters.accepted++
        session.onLeased?.(true)
        return Ref.getUnsafe(env.config).debug
          ? debug("connection put", { worker: worker.id, remoteAddress: connection.remoteAddress }).pipe(
              Effect.andThen(serve(env, run, session, connection))
            )
          : serve(env, run, session, connection)
      })
      session.fiber = Effect.runForkWith(env.context)(Effect.onExit(served, endSession(run, session)))
      if (session.leased) return Effect.void
      if (session.fiber.pollUnsafe() !== undefined) return notRunning()
      return Effect.callback<void, NotRunningError>((resume) => {
        session.onLeased = (leased) => {
          session.onLeased = undefined
          resume(leased ? Effect.void : notRunning())
        }
      })
    }

    const put = (connection: Connection): Effect.Effect<void, AdmissionError> =>
      Effect.uninterruptible(
        Effect.suspend(() => {
          const run = env.run
          if (run === undefined || run.stopping) return notRunning()
          return Effect.flatMap(env.admission.acquire(connection.transport), () =>
            // A put that waited in the queue may have waited through a stop.
            env.run === run && !run.stopping
              ? admit(run, connection)
              : Effect.andThen(env.admission.release(connection.transport), notRunning())
          )
        })
      )

    const stop = lifecycle.withPermit(
      Effect.suspend(() => {
        const run = env.run
        if (run === undefined) return Effect.void
        const config = Ref.getUnsafe(env.config)
        run.stopping = true
        env.admission.rejectWaiters()
        // Sessions waiting for a message take what already arrived and close;
        // busy ones finish their message first. Bytes already in the kernel
        // reach a socket only when the event loop polls for I/O: wake them
        // after it polled once (a timer set from a timer fires a loop
        // iteration later), so a request sent before the stop is served.
        // The drain timeout runs meanwhile.
        setTimeout(() => {
          setTimeout(() => {
            for (const session of run.sessions) session.wake?.()
          }, 0)
        }, 0)
        if (run.sessions.size === 0) Deferred.doneUnsafe(run.drained, Effect.void)
        const drainTimeout = Duration.isFinite(config.drainTimeout) ? config.drainTimeout : undefined
        const drained = Deferred.await(run.drained)
        return debug("pool manager stopping", { busy: run.sessions.size }).pipe(
          Effect.andThen(drainTimeout === undefined ? drained : Effect.timeoutOption(drained, drainTimeout)),
          Effect.andThen(() => {
            const fibers = Array.from(run.sessions, (session) => session.fiber).filter((fiber) => fiber !== undefined)
            if (fibers.length === 0) return Effect.void
            return Effect.logWarning("drainTimeout passed: interrupting the callbacks still running").pipe(
              Effect.annotateLogs({ busy: fibers.length, drainTimeout: Duration.format(config.drainTimeout) }),
              Effect.andThen(Fiber.interruptAll(fibers))
            )
          }),
          // Closing the run's scope shuts its pool down, which retires every worker.
          Effect.andThen(Scope.close(run.scope, Exit.void)),
          Effect.andThen(() => {
            env.run = undefined
            return debug("pool manager stopped", {})
          })
        )
      })
    )

    const setConfig = (input: ManagerConfig.Input) =>
      configLock.withPermit(
        Effect.gen(function* () {
          const next = yield* ManagerConfig.make(input, Ref.getUnsafe(env.config))
          yield* Ref.set(env.config, next)
          yield* env.admission.resize
          const changed = env.configChanged
          env.configChanged = yield* Deferred.make<void>()
          yield* Deferred.succeed(changed, undefined)
          if (env.run !== undefined) yield* ensureMin(env, env.run)
          yield* debug("config changed", ManagerConfig.toJson(next))
          return next
        })
      )

    const stats = Effect.sync((): PoolStats => {
      const run = env.run
      const c = env.counters
      return {
        running: run !== undefined && !run.stopping,
        workers: c.workers,
        busy: c.busy,
        idle: env.idleCount(),
        waiting: env.admission.waiting(),
        accepted: c.accepted,
        rejected: c.rejected,
        rejectedByAddress: c.rejectedByAddress,
        queueTimeouts: c.queueTimeouts,
        messages: c.messages,
        bytesRead: c.bytesRead,
        bytesWritten: env.bytesWritten(),
        callbackFailures: c.callbackFailures,
        closedByDeadline: c.closedByDeadline,
        closedBySize: c.closedBySize,
        closedByPeer: c.closedByPeer,
        closedByStop: c.closedByStop,
        closedByMessageLimit: c.closedByMessageLimit,
        interruptedByDrain: c.interruptedByDrain,
        spawned: c.spawned,
        retired: c.retired
      }
    })

    yield* Effect.addFinalizer(() => stop)

    return PoolManager.of({ start, put, config: Ref.get(env.config), setConfig, stop, stats })
  })

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
  callback: Callback<E, R> | SyncCallback
): Layer.Layer<PoolManager, ConfigError, R> =>
  Layer.effect(
    PoolManager,
    Effect.tap(make(config, callback), (manager) => Effect.orDie(manager.start))
  )
