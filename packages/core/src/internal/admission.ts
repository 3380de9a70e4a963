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

export const make = (
  config: Ref.Ref<ManagerConfig>,
  counters: Counters,
  queueWait: DurationHistogram,
  clock: Clock.Clock
): Admission => {
  let capacity = capacityOf(Ref.getUnsafe(config))
  let inUse = 0
  const waiters: Array<Waiter> = []
  const perHost = new Map<string, number>()
  // The host each connection was counted under, when a per-address limit
  // applied at its admission (the limit may change before it ends). Without a
  // limit nothing is counted, and the host is never even looked up.
  const countedHost = new WeakMap<Transport, string>()

  const leave = (transport: Transport) => {
    const host = countedHost.get(transport)
    if (host === undefined) return
    countedHost.delete(transport)
    const count = (perHost.get(host) ?? 1) - 1
    if (count === 0) perHost.delete(host)
    else perHost.set(host, count)
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
  const admitWaiters = () => {
    while (waiters.length > 0 && inUse < capacity) {
      inUse++
      settle(waiters.shift()!, "admitted")
    }
  }

  const giveBack = () => {
    inUse--
    admitWaiters()
  }

  const refused = (error: AdmissionError, transport: Transport): Effect.Effect<never, AdmissionError> =>
    Ref.getUnsafe(config).debug
      ? Effect.logDebug("connection refused").pipe(
          Effect.annotateLogs({ remoteAddress: transport.remoteAddress, reason: error.message }),
          Effect.andThen(Effect.fail(error))
        )
      : Effect.fail(error)

  const busy = (current: ManagerConfig) =>
    withoutStack(() => new PoolBusyError({ maxWorkersCount: current.maxWorkersCount }))

  const wait = (current: ManagerConfig, restore: Restore): Effect.Effect<void, PoolBusyError | NotRunningError> => {
    const waiter: Waiter = { outcome: undefined, resume: undefined }
    waiters.push(waiter)
    const since = clock.currentTimeMillisUnsafe()
    const settled = Effect.callback<void>((resume) => {
      if (waiter.outcome !== undefined) return resume(Effect.void)
      waiter.resume = () => resume(Effect.void)
      return Effect.sync(() => {
        waiter.resume = undefined
      })
    })
    const timeout = Duration.isFinite(current.queueTimeout) ? current.queueTimeout : undefined
    return restore(timeout === undefined ? settled : Effect.timeoutOption(settled, timeout)).pipe(
      Effect.onExit((exit) => {
        queueWait.observe((clock.currentTimeMillisUnsafe() - since) / 1000)
        // Still queued: it timed out or was interrupted. Leave in the same step.
        if (waiter.outcome === undefined) {
          const index = waiters.indexOf(waiter)
          if (index !== -1) waiters.splice(index, 1)
        } else if (waiter.outcome === "admitted" && Exit.isFailure(exit)) {
          // Interrupted just after it was handed a slot: pass the slot on.
          giveBack()
        }
        return Effect.void
      }),
      Effect.flatMap((): Effect.Effect<void, PoolBusyError | NotRunningError> => {
        if (waiter.outcome === "admitted") return Effect.void
        if (waiter.outcome === "stopped") return Effect.fail(withoutStack(() => new NotRunningError()))
        counters.queueTimeouts++
        counters.rejected++
        return Effect.fail(busy(current))
      })
    )
  }

  const acquire = (transport: Transport, restore: Restore, ticket?: Ticket): Effect.Effect<void, AdmissionError> =>
    Effect.suspend(() => {
      const current = Ref.getUnsafe(config)
      const limit = current.maxConnectionsPerAddress
      if (limit > 0) {
        const host = normalizeHost(transport.remoteHost)
        const fromHost = perHost.get(host) ?? 0
        if (fromHost >= limit) {
          counters.rejectedByAddress++
          return refused(
            withoutStack(() => new AddressLimitError({ remoteHost: host, maxConnectionsPerAddress: limit })),
            transport
          )
        }
        perHost.set(host, fromHost + 1)
        countedHost.set(transport, host)
      }
      const queue = current.admissionPolicy === "queue"
      // With a queue, newcomers wait behind the connections already waiting.
      if (!(queue && waiters.length > 0) && inUse < capacity) {
        inUse++
        return Effect.void
      }
      if (queue && waiters.length < current.queueSize) {
        if (ticket !== undefined) ticket.queued = true
        return Effect.onError(wait(current, restore), () => Effect.sync(() => leave(transport)))
      }
      leave(transport)
      counters.rejected++
      return refused(busy(current), transport)
    })

  return {
    acquire,
    release: (transport) => {
      leave(transport)
      giveBack()
    },
    resize: () => {
      capacity = capacityOf(Ref.getUnsafe(config))
      admitWaiters()
    },
    rejectWaiters: () => {
      for (const waiter of waiters.splice(0)) settle(waiter, "stopped")
    },
    waiting: () => waiters.length
  }
}
