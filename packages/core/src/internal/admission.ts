/**
 * Admission: whether `put` may hand a connection to a worker now.
 *
 * A `Semaphore` sized to `maxWorkersCount` (unbounded for 0) holds one permit
 * per connection being served; it is resized live, and lowering it never
 * touches connections already admitted. Under the `"queue"` policy a put that
 * finds no permit joins a FIFO of at most `queueSize` waiters for up to
 * `queueTimeout`; permits freed by ending connections go to waiters first, so
 * a newcomer never overtakes them. `maxConnectionsPerAddress` caps admitted
 * plus waiting connections per client host.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Semaphore from "effect/Semaphore"
import type { Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import { AddressLimitError, NotRunningError, PoolBusyError } from "../PoolError.ts"
import { withoutStack } from "./errors.ts"
import type { Counters } from "./state.ts"

/** Why a waiter woke: a permit is now its own, or the manager stopped. */
type Wake = "admitted" | "stopped"

/** What `acquire` can fail with. */
export type AdmissionError = PoolBusyError | NotRunningError | AddressLimitError

export interface Admission {
  /** Takes a permit for a connection, waiting only under the queue policy. */
  readonly acquire: (transport: Transport) => Effect.Effect<void, AdmissionError>
  /** Gives back the permit of a connection. */
  readonly release: (transport: Transport) => Effect.Effect<void>
  /** Applies a new config's max: resizes the semaphore and admits waiters that now fit. */
  readonly resize: Effect.Effect<void>
  /** Fails every waiter with `NotRunningError` (at stop). */
  readonly rejectWaiters: () => void
  /** Connections waiting for a permit now. */
  readonly waiting: () => number
}

const permitsFor = (config: ManagerConfig): number =>
  config.maxWorkersCount === 0 ? Number.POSITIVE_INFINITY : config.maxWorkersCount

// IPv4 clients of a dual-stack listener show up as ::ffff:a.b.c.d; count them
// with their plain IPv4 form.
const normalizeHost = (host: string): string => (host.startsWith("::ffff:") ? host.slice(7) : host)

export const make = (config: Ref.Ref<ManagerConfig>, counters: Counters): Effect.Effect<Admission> =>
  Effect.gen(function* () {
    const permits = yield* Semaphore.make(permitsFor(Ref.getUnsafe(config)))
    const waiters: Array<Deferred.Deferred<Wake>> = []
    const perHost = new Map<string, number>()
    // The host each connection was counted under, when a per-address limit
    // applied at its admission (the limit may change before it ends). Without a
    // limit nothing is counted, and the host is never even looked up.
    const countedHost = new WeakMap<Transport, string>()

    const leaveHost = (host: string) => {
      const count = (perHost.get(host) ?? 1) - 1
      if (count === 0) perHost.delete(host)
      else perHost.set(host, count)
    }

    // Hands free permits to waiters, oldest first.
    const admitWaiters: Effect.Effect<void> = Effect.suspend(() => {
      if (waiters.length === 0) return Effect.void
      return Effect.flatMap(permits.takeIfAvailable(1), (taken) => {
        if (!taken) return Effect.void
        const waiter = waiters.shift()!
        Deferred.doneUnsafe(waiter, Effect.succeed("admitted"))
        return admitWaiters
      })
    })

    const wait = (current: ManagerConfig): Effect.Effect<void, PoolBusyError | NotRunningError> => {
      const waiter = Deferred.makeUnsafe<Wake>()
      waiters.push(waiter)
      counters.queued++
      const timeout = Duration.isFinite(current.queueTimeout) ? current.queueTimeout : undefined
      const awaited = Deferred.await(waiter)
      return (timeout === undefined ? Effect.asSome(awaited) : Effect.timeoutOption(awaited, timeout)).pipe(
        Effect.flatMap((woke): Effect.Effect<void, PoolBusyError | NotRunningError> => {
          // A permit handed over just as the timeout fired is still ours: use it.
          const outcome = woke._tag === "Some" ? woke.value : Deferred.isDoneUnsafe(waiter) ? "admitted" : undefined
          if (outcome === "admitted") return Effect.void
          if (outcome === "stopped") return Effect.fail(withoutStack(() => new NotRunningError()))
          const index = waiters.indexOf(waiter)
          if (index !== -1) waiters.splice(index, 1)
          counters.queueTimeouts++
          counters.rejected++
          return Effect.fail(withoutStack(() => new PoolBusyError({ maxWorkersCount: current.maxWorkersCount })))
        })
      )
    }

    const refused = (error: AdmissionError, transport: Transport): Effect.Effect<never, AdmissionError> =>
      Ref.getUnsafe(config).debug
        ? Effect.logDebug("connection refused").pipe(
            Effect.annotateLogs({ remoteAddress: transport.remoteAddress, reason: error.message }),
            Effect.andThen(Effect.fail(error))
          )
        : Effect.fail(error)

    const leave = (transport: Transport) => {
      const host = countedHost.get(transport)
      if (host === undefined) return
      countedHost.delete(transport)
      leaveHost(host)
    }

    const acquire = (transport: Transport): Effect.Effect<void, AdmissionError> =>
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
        const fast = queue && waiters.length > 0 ? Effect.succeed(false) : permits.takeIfAvailable(1)
        return Effect.flatMap(fast, (taken): Effect.Effect<void, AdmissionError> => {
          if (taken) return Effect.void
          if (queue && waiters.length < current.queueSize) {
            return Effect.onError(wait(current), () => Effect.sync(() => leave(transport)))
          }
          leave(transport)
          counters.rejected++
          return refused(
            withoutStack(() => new PoolBusyError({ maxWorkersCount: current.maxWorkersCount })),
            transport
          )
        })
      })

    return {
      acquire,
      release: (transport) =>
        Effect.suspend(() => {
          leave(transport)
          return waiters.length === 0 ? permits.release(1) : Effect.andThen(permits.release(1), admitWaiters)
        }),
      resize: Effect.suspend(() => Effect.andThen(permits.resize(permitsFor(Ref.getUnsafe(config))), admitWaiters)),
      rejectWaiters: () => {
        for (const waiter of waiters.splice(0)) Deferred.doneUnsafe(waiter, Effect.succeed("stopped"))
      },
      waiting: () => waiters.length
    }
  })
