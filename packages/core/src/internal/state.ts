/**
 * The plain data shared by the manager, its workers and the connections they
 * serve, and the states they move through. Everything here is touched only
 * from synchronous steps of fibers, which on one JavaScript thread makes each
 * step atomic: no locks are needed for it. The behaviour lives in the modules that import this one.
 */
import type * as Context from "effect/Context"
import type * as Deferred from "effect/Deferred"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Pool from "effect/Pool"
import type * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { Connection, Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import type { Callback, SyncCallback } from "../PoolManager.ts"
import type { Admission } from "./admission.ts"
import type { Counters } from "./counters.ts"
import type { DurationHistogram } from "./histogram.ts"
import type { Tracing } from "./tracing.ts"

/**
 * A worker: an item of the scoped `Pool`, lent to one connection at a time.
 * It carries no work of its own (the connection's fiber does the work); it is
 * the unit the pool spawns, keeps idle, lends and retires, with an id for logs.
 */
export interface Worker {
  readonly id: number
}

/**
 * How far a connection got after `put` admitted it: waiting for a worker
 * (`Reserved`), owned by a worker (`Leased`), or given up before a worker
 * touched it, because its `put` was interrupted or the pool refused to lend
 * (`Abandoned`). It only moves forward: Reserved, then Leased or Abandoned.
 */
export type Lease =
  | { readonly _tag: "Reserved" }
  | { readonly _tag: "Leased"; readonly worker: Worker }
  | { readonly _tag: "Abandoned" }

/** The lease of a connection admitted and waiting for its worker. */
export const reserved: Lease = { _tag: "Reserved" }

/** The lease of a connection given up before a worker touched it. */
export const abandoned: Lease = { _tag: "Abandoned" }

/** One admitted connection and the fiber that serves it. */
export interface ServedConnection {
  readonly transport: Transport
  lease: Lease
  /** Set by its serve loop: at `stop`, ends its wait for a message (nothing while a message is handled). */
  wake: (() => void) | undefined
  fiber: Fiber.Fiber<void> | undefined
  /** Set while `put` waits for the worker being spawned for it. */
  onLeased: ((leased: boolean) => void) | undefined
  /** Its `pool.connection` span, when tracing. */
  readonly span: Tracer.Span | undefined
  /** Messages handed to the callback, and their bytes: counted for its span, only when there is one. */
  messages: number
  bytesRead: number
  /** Why it closed, once it did (for its span). */
  closeReason: string | undefined
}

/**
 * One running period of the manager, from `start` to the end of `stop`: the
 * workers, the scope they live in, and the connections admitted meanwhile.
 */
export interface Period {
  readonly pool: Pool.Pool<Worker>
  readonly scope: Scope.Closeable
  readonly connections: Set<ServedConnection>
  /** Completed once the manager is stopping and the last connection ended. */
  readonly drained: Deferred.Deferred<void>
}

/**
 * The manager's life. `start` moves it from `Stopped` to `Running`; `stop`
 * from `Running` to `Stopping` (nothing is admitted, connections drain) and,
 * once the period's scope is closed, to `Stopped`. A new object per
 * transition, so a wait that began while `Running` can tell, by identity,
 * whether the manager is still in that same running period.
 */
export type Lifecycle =
  | { readonly _tag: "Stopped" }
  | { readonly _tag: "Running"; readonly period: Period }
  | { readonly _tag: "Stopping"; readonly period: Period }

/** The life of a manager not started, or stopped. */
export const stopped: Lifecycle = { _tag: "Stopped" }

/** What every part of one manager shares. */
export interface ManagerState {
  readonly config: Ref.Ref<ManagerConfig>
  readonly counters: Counters
  /** Connections admitted whose worker is still being spawned (their workers are not idle). */
  reserved: number
  readonly admission: Admission
  readonly callback: Callback<unknown, unknown, unknown>
  /** Set for a `syncCallback`: run in the transport's event, without resuming the connection's fiber. */
  readonly sync: SyncCallback<unknown>["run"] | undefined
  /** Set for a callback given `withState`: makes a connection's state, in the connection's Scope. */
  readonly init: ((conn: Connection) => Effect.Effect<unknown, unknown, Scope.Scope>) | undefined
  /** The context `make` ran in, minus its Scope: connections run their callbacks with it. */
  readonly context: Context.Context<never>
  /** Completed (and replaced) on every `setConfig`, to wake the reaper. */
  configChanged: Deferred.Deferred<void>
  lifecycle: Lifecycle
  nextWorkerId: number
  readonly callbackDuration: DurationHistogram
  /** Time waited in the admission queue by each put that queued, admitted or not. */
  readonly queueWait: DurationHistogram
  /** Set when a tracer is installed: decided once, by `make`. */
  readonly tracing: Tracing | undefined
}
