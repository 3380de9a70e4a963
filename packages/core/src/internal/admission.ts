/**
 * Admission: whether `put` may hand a connection to a worker now.
 *
 * A count of slots in use, capped by `maxWorkersCount` (unbounded for 0),
 * holds one slot per connection between its admission and its end; the cap
 * follows the live config, and lowering it never touches connections already
 * admitted. Under the `"queue"` policy a put that finds no free slot joins a
 * FIFO of at most `queueSize` waiters for up to `queueTimeout`; slots freed by
 * ending connections go to waiters first, so a newcomer never overtakes them.
 * `maxConnectionsPerAddress` caps admitted plus waiting connections per
 * client host.
 *
 * Every decision is one synchronous step (one JavaScript thread): a slot is
 * handed to a waiter in the same step that removes it from the queue, and a
 * waiter that leaves (timeout, interruption) removes itself in one step too,
 * so a slot is never both handed over and lost. A wait that ends in failure
 * or interruption after it was handed a slot gives the slot back.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import type { Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import { AddressLimitError, NotRunningError, PoolBusyError } from "../PoolError.ts"
import type { Counters } from "./counters.ts"
import { withoutStack } from "./errors.ts"
import type { DurationHistogram } from "./histogram.ts"

/** What `acquire` can fail with. */
export type AdmissionError = PoolBusyError | NotRunningError | AddressLimitError

/** Lets a region of an uninterruptible effect be interrupted (`Effect.uninterruptibleMask`'s `restore`). */
export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** Filled in by `acquire` for a traced put: whether it waited in the queue. */
export interface Ticket {
  queued: boolean
}

export interface Admission {
  /**
   * Takes a slot for a connection, waiting only under the queue policy. Run it
   * uninterruptibly: only the wait is made interruptible, with `restore`. On
   * failure or interruption it holds nothing. A `ticket` learns whether it queued.
   */
  readonly acquire: (
    transport: Transport,
    restore: Restore,
    ticket?: Ticket | undefined
  ) => Effect.Effect<void, AdmissionError>
  /** Gives back the slot of a connection, handing it to the oldest waiter if any. */
  readonly release: (transport: Transport) => void
  /** Applies a new config's max and admits waiters that now fit. */
  readonly resize: () => void
  /** Fails every waiter with `NotRunningError` (at stop). */
  readonly rejectWaiters: () => void
  /** Connections waiting for a slot now. */
  readonly waiting: () => number
}

/** A put waiting for a slot; `outcome` is set in the step that settles it. */
interface Waiter {
  outcome: "admitted" | "stopped" | undefined
  resume: (() => void) | undefined
}

const capacityOf = (config: ManagerConfig): number =>
  config.maxWorkersCount === 0 ? Number.POSITIVE_INFINITY : config.maxWorkersCount

// IPv4 clients of a dual-stack listener show up as ::ffff:a.b.c.d; count them
// with their plain IPv4 form.
const normalizeHost = (host: string): string => (host.startsWith("::ffff:") ? host.slice(7) : host)

/**
 * The admission of one manager: its public methods on the prototype, the
 * decisions in functions of it below.
 */
class AdmissionState implements Admission {
  readonly config: Ref.Ref<ManagerConfig>
  readonly counters: Counters
  readonly queueWait: DurationHistogram
  readonly clock: Clock.Clock
  capacity: number
  inUse = 0
  readonly waiters: Array<Waiter> = []
  readonly perHost = new Map<string, number>()
  // The host each connection was counted under, when a per-address limit
  // applied at its admission (the limit may change before it ends). Without a
  // limit nothing is counted, and the host is never even looked up.
  readonly countedHost = new WeakMap<Transport, string>()

  constructor(config: Ref.Ref<ManagerConfig>, counters: Counters, queueWait: DurationHistogram, clock: Clock.Clock) {
    this.config = config
    this.counters = counters
    this.queueWait = queueWait
    this.clock = clock
    this.capacity = capacityOf(Ref.getUnsafe(config))
  }

  acquire(transport: Transport, restore: Restore, ticket?: Ticket): Effect.Effect<void, AdmissionError> {
    return Effect.suspend(() => admit(this, transport, restore, ticket))
  }
  release(transport: Transport): void {
    leave(this, transport)
    giveBack(this)
  }
  resize(): void {
    this.capacity = capacityOf(Ref.getUnsafe(this.config))
    admitWaiters(this)
  }
  rejectWaiters(): void {
    for (const waiter of this.waiters.splice(0)) settle(waiter, "stopped")
  }
  waiting(): number {
    return this.waiters.length
  }
}

export const make = (
  config: Ref.Ref<ManagerConfig>,
  counters: Counters,
  queueWait: DurationHistogram,
  clock: Clock.Clock
): Admission => new AdmissionState(config, counters, queueWait, clock)

// Uncounts a connection from its host, if it was counted.
const leave = (self: AdmissionState, transport: Transport) => {
  const host = self.countedHost.get(transport)
  if (host === undefined) return
  self.countedHost.delete(transport)
  const count = (self.perHost.get(host) ?? 1) - 1
  if (count === 0) self.perHost.delete(host)
  else self.perHost.set(host, count)
}

const settle = (waiter: Waiter, outcome: "admitted" | "stopped") => {
  waiter.outcome = outcome
  const resume = waiter.resume
  waiter.resume = undefined
  resume?.()
}

// Hands free slots to waiters, oldest first. Settling a waiter may run its
// put at once (and that put may give its slot back), so the loop re-reads
// the state on every turn.
const admitWaiters = (self: AdmissionState) => {
  while (self.waiters.length > 0 && self.inUse < self.capacity) {
    self.inUse++
    settle(self.waiters.shift()!, "admitted")
  }
}

const giveBack = (self: AdmissionState) => {
  self.inUse--
  admitWaiters(self)
}

const refused = (
  self: AdmissionState,
  error: AdmissionError,
  transport: Transport
): Effect.Effect<never, AdmissionError> =>
  Ref.getUnsafe(self.config).debug
    ? Effect.logDebug("connection refused").pipe(
        Effect.annotateLogs({ remoteAddress: transport.remoteAddress, reason: error.message }),
        Effect.andThen(Effect.fail(error))
      )
    : Effect.fail(error)

const busy = (current: ManagerConfig) =>
  withoutStack(() => new PoolBusyError({ maxWorkersCount: current.maxWorkersCount }))

// The decision of `acquire`, in one step: count the host, then take a free
// slot, queue, or refuse.
const admit = (
  self: AdmissionState,
  transport: Transport,
  restore: Restore,
  ticket: Ticket | undefined
): Effect.Effect<void, AdmissionError> => {
  const current = Ref.getUnsafe(self.config)
  const limit = current.maxConnectionsPerAddress
  if (limit > 0) {
    const host = normalizeHost(transport.remoteHost)
    const fromHost = self.perHost.get(host) ?? 0
    if (fromHost >= limit) {
      self.counters.rejectedByAddress++
      return refused(
        self,
        withoutStack(() => new AddressLimitError({ remoteHost: host, maxConnectionsPerAddress: limit })),
        transport
      )
    }
    self.perHost.set(host, fromHost + 1)
    self.countedHost.set(transport, host)
  }
  const queue = current.admissionPolicy === "queue"
  // With a queue, newcomers wait behind the connections already waiting.
  if (!(queue && self.waiters.length > 0) && self.inUse < self.capacity) {
    self.inUse++
    return Effect.void
  }
  if (queue && self.waiters.length < current.queueSize) {
    if (ticket !== undefined) ticket.queued = true
    return Effect.onError(wait(self, current, restore), () => Effect.sync(() => leave(self, transport)))
  }
  leave(self, transport)
  self.counters.rejected++
  return refused(self, busy(current), transport)
}

// Queues a put until it is settled, times out or is interrupted.
const wait = (
  self: AdmissionState,
  current: ManagerConfig,
  restore: Restore
): Effect.Effect<void, PoolBusyError | NotRunningError> => {
  const waiter: Waiter = { outcome: undefined, resume: undefined }
  self.waiters.push(waiter)
  const since = self.clock.currentTimeMillisUnsafe()
  const settled = Effect.callback<void>((resume) => {
    if (waiter.outcome !== undefined) return resume(Effect.void)
    // Through a local, as every closure stored on a property is (lint/noClosureOnProperty.grit).
    const wakeUp = () => resume(Effect.void)
    waiter.resume = wakeUp
    return Effect.sync(() => {
      waiter.resume = undefined
    })
  })
  const timeout = Duration.isFinite(current.queueTimeout) ? current.queueTimeout : undefined
  return restore(timeout === undefined ? settled : Effect.timeoutOption(settled, timeout)).pipe(
    Effect.onExit((exit) => {
      endWait(self, waiter, since, exit)
      return Effect.void
    }),
    Effect.flatMap(() => waitOutcome(self, waiter, current))
  )
}

// Ends a wait in the step it ends in, whatever ended it.
const endWait = (self: AdmissionState, waiter: Waiter, since: number, exit: Exit.Exit<unknown, unknown>) => {
  self.queueWait.observe((self.clock.currentTimeMillisUnsafe() - since) / 1000)
  // Still queued: it timed out or was interrupted. Leave in the same step.
  if (waiter.outcome === undefined) {
    const index = self.waiters.indexOf(waiter)
    if (index !== -1) self.waiters.splice(index, 1)
  } else if (waiter.outcome === "admitted" && Exit.isFailure(exit)) {
    // Interrupted just after it was handed a slot: pass the slot on.
    giveBack(self)
  }
}

// What a wait that was not interrupted comes to: a slot, a stop, or a timeout.
const waitOutcome = (
  self: AdmissionState,
  waiter: Waiter,
  current: ManagerConfig
): Effect.Effect<void, PoolBusyError | NotRunningError> => {
  if (waiter.outcome === "admitted") return Effect.void
  if (waiter.outcome === "stopped") return Effect.fail(withoutStack(() => new NotRunningError()))
  self.counters.queueTimeouts++
  self.counters.rejected++
  return Effect.fail(busy(current))
}
