/**
 * The mutable state shared by the manager, its workers and its sessions.
 * Everything here is touched only from synchronous steps of fibers, which on
 * one JavaScript thread makes each step atomic: no locks are needed for it.
 */
import type * as Context from "effect/Context"
import type * as Deferred from "effect/Deferred"
import type * as Fiber from "effect/Fiber"
import type * as Pool from "effect/Pool"
import type * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import type { Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import type { Callback, SyncCallback } from "../PoolManager.ts"
import type { Admission } from "./admission.ts"
import type { DurationHistogram } from "./metrics.ts"

/** A worker, as the scoped `Pool` holds it. */
export interface Worker {
  readonly id: number
}

/** Running totals since the manager was made. */
export interface Counters {
  accepted: number
  /** Refused because the pool was busy (at once, or after waiting in the queue). */
  rejected: number
  rejectedByAddress: number
  queued: number
  queueTimeouts: number
  closedByMessageLimit: number
  busy: number
  workers: number
  spawned: number
  retired: number
  messages: number
  bytesRead: number
  /** Bytes written to connections that have ended (live ones are summed on demand). */
  bytesWritten: number
  callbackFailures: number
  closedByDeadline: number
  closedBySize: number
  closedByPeer: number
  closedByStop: number
  interruptedByDrain: number
}

/** One connection being served. `wake` is set only while it awaits a message. */
export interface Session {
  readonly transport: Transport
  wake: (() => void) | undefined
  fiber: Fiber.Fiber<void> | undefined
  /** Whether the pool has lent the session its worker. */
  leased: boolean
  /** Set while put waits for a worker being spawned. */
  onLeased: ((leased: boolean) => void) | undefined
}

/** One running period of the manager, from `start` to the end of `stop`. */
export interface Run {
  readonly pool: Pool.Pool<Worker>
  readonly scope: Scope.Closeable
  readonly sessions: Set<Session>
  /** Completed when `stopping` and the last session ended. */
  readonly drained: Deferred.Deferred<void>
  stopping: boolean
}

/** What every part of one manager shares. */
export interface Env {
  readonly config: Ref.Ref<ManagerConfig>
  readonly counters: Counters
  readonly admission: Admission
  readonly callback: Callback<unknown, unknown>
  /** Set for a `syncCallback`: run in the transport's event, without resuming the session's fiber. */
  readonly sync: SyncCallback["run"] | undefined
  /** The context `make` ran in: workers run their callbacks with it. */
  readonly context: Context.Context<unknown>
  /** Completed (and replaced) on every `setConfig`, to wake the reaper. */
  configChanged: Deferred.Deferred<void>
  run: Run | undefined
  nextWorkerId: number
  readonly callbackDuration: DurationHistogram
  /** Idle workers now. */
  readonly idleCount: () => number
  /** Bytes written so far, by ended and live connections. */
  readonly bytesWritten: () => number
}

export const makeCounters = (): Counters => ({
  accepted: 0,
  rejected: 0,
  rejectedByAddress: 0,
  queued: 0,
  queueTimeouts: 0,
  closedByMessageLimit: 0,
  busy: 0,
  workers: 0,
  spawned: 0,
  retired: 0,
  messages: 0,
  bytesRead: 0,
  bytesWritten: 0,
  callbackFailures: 0,
  closedByDeadline: 0,
  closedBySize: 0,
  closedByPeer: 0,
  closedByStop: 0,
  interruptedByDrain: 0
})
