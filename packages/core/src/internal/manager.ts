/**
 * The manager's implementation: `start`, `put`, `stop` and `setConfig` as
 * functions of the shared state of `state.ts`, whose `lifecycle` they move
 * through `Stopped`, `Running` and `Stopping`; `make` builds the state and
 * binds them, under the locks that serialise them. `PoolManager.ts` is its face.
 *
 * The hand-over in `put` is atomic. `put` runs uninterruptibly except where
 * it waits (in the admission queue, and for a worker being spawned), and
 * every wait can be left in one synchronous step that undoes what it held.
 * The worker takes the connection in the step that completes `put`: the
 * connection's fiber, once lent its worker, resumes the waiting `put`, which
 * Effect runs at once, in that same step, to its end. So either a worker owns
 * the connection and `put` succeeds, or `put` fails or is interrupted and the
 * pool never touched the connection.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Pool from "effect/Pool"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Tracer from "effect/Tracer"
import type { Connection } from "../Connection.ts"
import * as ManagerConfig from "../ManagerConfig.ts"
import { AlreadyRunningError, type ConfigError, NotRunningError } from "../PoolError.ts"
import type { Callback, PoolManager, PoolStats, Stateful, SyncCallback } from "../PoolManager.ts"
import * as Admission from "./admission.ts"
import * as Counters from "./counters.ts"
import { withoutStack } from "./errors.ts"
import { makeDurationHistogram } from "./histogram.ts"
import * as Metrics from "./metrics.ts"
import { serve } from "./serve.ts"
import {
  abandoned,
  type Lifecycle,
  type ManagerState,
  type Period,
  reserved,
  type ServedConnection,
  stopped
} from "./state.ts"
import * as Stats from "./stats.ts"
import * as Tracing from "./tracing.ts"
import { ensureMin, makePool } from "./workers.ts"

type AnyCallback = Callback<any, any, any> | SyncCallback<any>

const isSyncCallback = (callback: AnyCallback): callback is SyncCallback<any> =>
  typeof callback === "object" && callback._tag === "SyncCallback"

const isStateful = (callback: AnyCallback | Stateful<any, any, any>): callback is Stateful<any, any, any> =>
  typeof callback === "object" && callback._tag === "Stateful"

const notRunning = () => Effect.fail(withoutStack(() => new NotRunningError()))

const debug = (state: ManagerState, message: string, annotations: Record<string, unknown>): Effect.Effect<void> =>
  Ref.getUnsafe(state.config).debug ? Effect.logDebug(message).pipe(Effect.annotateLogs(annotations)) : Effect.void

// ---------------------------------------------------------------------------
// start: Stopped -> Running
// ---------------------------------------------------------------------------

const start = (state: ManagerState): Effect.Effect<void, AlreadyRunningError> =>
  Effect.gen(function* () {
    if (state.lifecycle._tag !== "Stopped") return yield* new AlreadyRunningError()
    const scope = yield* Scope.make()
    const period: Period = {
      pool: yield* makePool(state, scope),
      scope,
      connections: new Set(),
      drained: yield* Deferred.make<void>()
    }
    const running: Lifecycle = { _tag: "Running", period }
    yield* ensureMin(state, running)
    state.lifecycle = running
    yield* debug(state, "pool manager started", ManagerConfig.toJson(Ref.getUnsafe(state.config)))
  })

// ---------------------------------------------------------------------------
// put: admission, then a worker's lease
// ---------------------------------------------------------------------------

const put = (
  state: ManagerState,
  connection: Connection,
  trace: Tracing.PutTrace | undefined
): Effect.Effect<void, Admission.AdmissionError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      const running = state.lifecycle
      if (running._tag !== "Running") return notRunning()
      return Effect.flatMap(state.admission.acquire(connection.transport, restore, trace), () => {
        // A put that waited in the queue may have waited through a stop: the
        // life it began in is then no longer the manager's.
        if (state.lifecycle === running) {
          const span = trace === undefined ? undefined : Tracing.admitted(state.tracing!, trace, connection)
          return lend(state, running.period, connection, restore, span)
        }
        state.admission.release(connection.transport)
        return notRunning()
      })
    })
  )

// A put under the caller's span; a refused put gets a span of its own.
const putTraced = (state: ManagerState, tracing: Tracing.Tracing) => (connection: Connection) =>
  Effect.withFiber((fiber) => {
    const trace = Tracing.startPut(tracing, Context.getOrUndefined(fiber.context, Tracer.ParentSpan))
    return Effect.onError(put(state, connection, trace), (cause) =>
      Effect.sync(() => Tracing.refused(tracing, trace, connection, cause))
    )
  })

// The worker is borrowed with Pool.use inside the connection's own fiber: no
// Scope per connection, and the lease ends exactly when serving does. The
// fiber starts at once, so with an idle worker the lease is taken before it
// yields; only when a worker must be spawned does put wait for it.
const lend = (
  state: ManagerState,
  period: Period,
  connection: Connection,
  restore: Admission.Restore,
  span: Tracer.Span | undefined
): Effect.Effect<void, NotRunningError> => {
  const served: ServedConnection = {
    transport: connection.transport,
    lease: reserved,
    wake: undefined,
    fiber: undefined,
    onLeased: undefined,
    span,
    messages: 0,
    bytesRead: 0,
    closeReason: undefined
  }
  // Registered before the worker is borrowed, so a stop that begins while a
  // worker is being spawned still waits for this connection.
  period.connections.add(served)
  state.reserved++
  const serving = Pool.use(period.pool, (worker) => {
    // The put gave up while the worker was spawned: the worker goes back idle
    // and the connection stays untouched.
    if (served.lease._tag === "Abandoned") return Effect.void
    state.reserved--
    served.lease = { _tag: "Leased", worker }
    state.counters.busy++
    state.counters.accepted++
    if (span !== undefined) Tracing.leased(span, worker.id)
    // Built first: the connection takes the config (its framing) of the
    // moment a worker took it, before the put it completes runs on.
    const body = Effect.onExit(serve(state, served, connection), endLease(state, served))
    // Completes a put waiting for this worker, in this very step.
    served.onLeased?.(true)
    return Ref.getUnsafe(state.config).debug
      ? debug(state, "connection put", { worker: worker.id, remoteAddress: connection.remoteAddress }).pipe(
          Effect.andThen(body)
        )
      : body
  })
  // Under its span, the callback's own spans nest in the connection's.
  const context = span === undefined ? state.context : Context.add(state.context, Tracer.ParentSpan, span)
  served.fiber = Effect.runForkWith(context)(Effect.onExit(serving, endConnection(state, period, served)))
  if (served.lease._tag === "Leased") return Effect.void
  if (served.lease._tag === "Abandoned") return notRunning()
  return awaitLease(state, served, restore)
}

// Waits, interruptibly, for the worker being spawned for `served`.
const awaitLease = (
  state: ManagerState,
  served: ServedConnection,
  restore: Admission.Restore
): Effect.Effect<void, NotRunningError> =>
  restore(
    Effect.callback<void, NotRunningError>((resume) => {
      // This fiber may have yielded (its op budget ran out) since `lend`
      // returned, and the worker been lent or refused meanwhile.
      if (served.lease._tag !== "Reserved") return resume(served.lease._tag === "Leased" ? Effect.void : notRunning())
      // Through a local, as every closure stored on a property is (lint/noClosureOnProperty.grit).
      const onLeased = (leased: boolean) => {
        served.onLeased = undefined
        resume(leased ? Effect.void : notRunning())
      }
      served.onLeased = onLeased
      return Effect.sync(() => {
        served.onLeased = undefined
      })
    })
  ).pipe(
    // Interrupted while the worker is spawned (or before it even waited):
    // give the connection up in this step; the worker, once spawned, goes
    // back idle.
    Effect.onExit((exit) => {
      if (Exit.isFailure(exit)) unreserve(state, served)
      return Effect.void
    })
  )

const unreserve = (state: ManagerState, served: ServedConnection) => {
  if (served.lease._tag !== "Reserved") return
  served.lease = abandoned
  state.reserved--
}

// Ends the lease of a connection a worker owned, before the worker goes back
// to the pool: so `busy` never counts a connection without a worker.
const endLease =
  (state: ManagerState, served: ServedConnection) =>
  (exit: Exit.Exit<void>): Effect.Effect<void> => {
    const transport = served.transport
    // Only the drain timeout interrupts a lease.
    const cut = Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause)
    if (cut) {
      // Drop what it had queued.
      state.counters.interruptedByDrain++
      served.closeReason = "drain"
      transport.abort()
    } else {
      transport.close()
    }
    state.counters.bytesWritten += transport.bytesWritten
    state.counters.busy--
    if (cut || Exit.isSuccess(exit)) return Effect.void
    // The serve loop handles the callback's failures, so what fails here is
    // a `withState` finalizer, run once the connection had closed and been
    // counted by why: keep that reason, and say what failed.
    return Effect.logWarning("connection state finalizer failed", exit.cause).pipe(
      Effect.annotateLogs({ remoteAddress: transport.remoteAddress })
    )
  }

const endConnection =
  (state: ManagerState, period: Period, served: ServedConnection) =>
  (exit: Exit.Exit<void>): Effect.Effect<void> => {
    if (served.lease._tag === "Reserved") {
      // The pool refused to lend a worker (it only does so while shutting
      // down): put fails, and its caller keeps the connection.
      unreserve(state, served)
      served.onLeased?.(false)
    }
    if (served.span !== undefined) Tracing.closed(state.tracing!, served, exit)
    period.connections.delete(served)
    if (state.lifecycle._tag === "Stopping" && period.connections.size === 0) {
      Deferred.doneUnsafe(period.drained, Effect.void)
    }
    state.admission.release(served.transport)
    return Effect.void
  }

// ---------------------------------------------------------------------------
// stop: Running -> Stopping -> Stopped
// ---------------------------------------------------------------------------

const stop = (state: ManagerState): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.lifecycle._tag !== "Running") return Effect.void
    const period = state.lifecycle.period
    const config = Ref.getUnsafe(state.config)
    state.lifecycle = { _tag: "Stopping", period }
    state.admission.rejectWaiters()
    if (period.connections.size === 0) Deferred.doneUnsafe(period.drained, Effect.void)
    return Effect.forkChild(wakeWaiting(period)).pipe(
      Effect.andThen(debug(state, "pool manager stopping", { busy: period.connections.size })),
      Effect.andThen(drain(period, config)),
      // Closing the period's scope shuts its pool down, which retires every worker.
      Effect.andThen(Scope.close(period.scope, Exit.void)),
      Effect.andThen(() => {
        state.lifecycle = stopped
        return debug(state, "pool manager stopped", {})
      })
    )
  })

// Connections waiting for a message take what already arrived and close; busy
// ones finish their message first. Bytes already in the kernel reach a socket
// only when the event loop polls for I/O, so the waiting ones are woken two
// scheduler turns later: each turn is a macrotask of Effect's scheduler
// (setImmediate on Node), and the event loop polls for I/O between two of
// them, so a request sent before the stop is served. Being scheduler turns,
// not time, they need no clock (under TestClock too). The drain timeout runs
// meanwhile.
const wakeWaiting = (period: Period): Effect.Effect<void> =>
  Effect.yieldNow.pipe(
    Effect.andThen(Effect.yieldNow),
    Effect.andThen(
      Effect.sync(() => {
        for (const served of period.connections) served.wake?.()
      })
    )
  )

// Waits for the connections to end, at most drainTimeout, then interrupts
// the callbacks still running.
const drain = (period: Period, config: ManagerConfig.ManagerConfig): Effect.Effect<void> => {
  const drained = Deferred.await(period.drained)
  return (Duration.isFinite(config.drainTimeout) ? Effect.timeoutOption(drained, config.drainTimeout) : drained).pipe(
    Effect.andThen(() => {
      const fibers = Array.from(period.connections, (served) => served.fiber).filter((fiber) => fiber !== undefined)
      if (fibers.length === 0) return Effect.void
      return Effect.logWarning("drainTimeout passed: interrupting the callbacks still running").pipe(
        Effect.annotateLogs({ busy: fibers.length, drainTimeout: Duration.format(config.drainTimeout) }),
        Effect.andThen(Fiber.interruptAll(fibers))
      )
    })
  )
}

// ---------------------------------------------------------------------------
// setConfig
// ---------------------------------------------------------------------------

const setConfig = (
  state: ManagerState,
  input: ManagerConfig.Input
): Effect.Effect<ManagerConfig.ManagerConfig, ConfigError> =>
  Effect.gen(function* () {
    const next = yield* ManagerConfig.make(input, Ref.getUnsafe(state.config))
    yield* Ref.set(state.config, next)
    state.admission.resize()
    const changed = state.configChanged
    state.configChanged = yield* Deferred.make<void>()
    yield* Deferred.succeed(changed, undefined)
    yield* ensureMin(state, state.lifecycle)
    yield* debug(state, "config changed", ManagerConfig.toJson(next))
    return next
  })

// ---------------------------------------------------------------------------
// make
// ---------------------------------------------------------------------------

/** The state of a new, stopped manager with `config` and `given`, in the context `make` runs in. */
const makeState = <E, R>(
  config: ManagerConfig.Input,
  given: Callback<E, R> | SyncCallback | Stateful<any, E, R>
): Effect.Effect<ManagerState, ConfigError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const callback: AnyCallback = isStateful(given) ? given.handler : given
    const sync = isSyncCallback(callback) ? callback.run : undefined
    const configRef = yield* Ref.make(yield* ManagerConfig.make(config))
    const counters = Counters.make()
    // Connections run callbacks in the context `make` ran in, minus its
    // Scope: a callback's finalizers must not pile up in the manager's scope.
    const context = Context.omit(Scope.Scope)(yield* Effect.context<R | Scope.Scope>()) as Context.Context<never>
    const queueWait = makeDurationHistogram()
    return {
      config: configRef,
      counters,
      reserved: 0,
      admission: Admission.make(configRef, counters, queueWait, Context.get(context, Clock.Clock)),
      callback:
        sync === undefined
          ? (callback as Callback<unknown, unknown, unknown>)
          : (conn, body, len, connectionState) => {
              sync(conn, body, len, connectionState)
              return Effect.void
            },
      sync,
      init: isStateful(given) ? (given.init as ManagerState["init"]) : undefined,
      context,
      configChanged: yield* Deferred.make<void>(),
      lifecycle: stopped,
      nextWorkerId: 0,
      callbackDuration: makeDurationHistogram(),
      queueWait,
      tracing: Tracing.make(context)
    }
  })

export const make = <E, R>(
  config: ManagerConfig.Input,
  given: Callback<E, R> | SyncCallback | Stateful<any, E, R>
): Effect.Effect<PoolManager["Service"], ConfigError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const state = yield* makeState(config, given)
    yield* Metrics.register(state, yield* Effect.scope)
    // start and stop change the life one at a time; setConfig calls are
    // serialised separately, so a long drain does not hold up a config change.
    const lifecycle = yield* Semaphore.make(1)
    const configLock = yield* Semaphore.make(1)
    const stopping = lifecycle.withPermit(stop(state))
    yield* Effect.addFinalizer(() => stopping)
    const tracing = state.tracing
    return {
      start: lifecycle.withPermit(start(state)),
      put: tracing === undefined ? (connection) => put(state, connection, undefined) : putTraced(state, tracing),
      config: Ref.get(state.config),
      setConfig: (input) => configLock.withPermit(setConfig(state, input)),
      stop: stopping,
      stats: Effect.sync((): PoolStats => Stats.snapshot(state))
    }
  })
