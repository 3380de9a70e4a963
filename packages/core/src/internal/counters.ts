/**
 * The manager's counters: plain numbers bumped on the hot path, one field per
 * number of `PoolStats` that is counted rather than derived. The list of
 * fields is `PoolStats` itself (its documentation says what each counts), so
 * a new statistic is added in one place.
 */
import type { PoolStats } from "../PoolManager.ts"

/** The `PoolStats` fields computed when a snapshot is taken rather than counted. */
export type Derived = "running" | "idle" | "waiting"

/**
 * Counted numbers: gauges (`workers`, `busy`) and totals since `make` (the
 * rest). `bytesWritten` holds the bytes of connections that have ended; live
 * ones are summed when a snapshot is taken.
 */
export type Counters = { -readonly [K in Exclude<keyof PoolStats, Derived>]: number }

export const make = (): Counters => ({
  workers: 0,
  busy: 0,
  accepted: 0,
  rejected: 0,
  rejectedByAddress: 0,
  queueTimeouts: 0,
  messages: 0,
  bytesRead: 0,
  bytesWritten: 0,
  callbackFailures: 0,
  closedByDeadline: 0,
  closedBySize: 0,
  closedByFraming: 0,
  closedByPeer: 0,
  closedByStop: 0,
  closedByMessageLimit: 0,
  interruptedByDrain: 0,
  spawned: 0,
  retired: 0
})
