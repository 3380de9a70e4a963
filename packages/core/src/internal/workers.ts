/**
 * Workers: items of a scoped Effect `Pool`, one pool per running period.
 *
 * Effect's `Pool` fixes its min and max when it is built, and its `get` waits
 * when it is exhausted, while this manager's min and max change live and
 * `put` must never wait. So the pool is built with no minimum and no maximum
 * and three things sit around it:
 * - admission (`admission.ts`): a connection holds one of `maxWorkersCount`
 *   slots before it borrows a worker, so borrowing only ever reuses an idle
 *   worker or spawns one;
 * - the minimum: `ensureMin` borrows enough workers at once to make the pool
 *   grow to `minWorkersCount`, then hands them back idle (at start, and when
 *   `setConfig` raises it);
 * - retirement: the pool's strategy runs a reaper that reads the live config,
 *   and retires workers idle for `idleWorkerTimeout`, oldest first, never
 *   going below `minWorkersCount` and never touching a busy one. The strategy
 *   is the only code that reads the pool's own state; everything else counts
 *   with the manager's counters.
 * The pool returns released workers to the front of its idle list, so `put`
 * reuses the most recently idle worker first.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Pool from "effect/Pool"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { Lifecycle, ManagerState, Worker } from "./state.ts"

type Item = Pool.PoolItem<Worker, never>

const spawn = (state: ManagerState): Effect.Effect<Worker, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const worker: Worker = { id: ++state.nextWorkerId }
      state.counters.workers++
      state.counters.spawned++
      return Ref.getUnsafe(state.config).debug
        ? Effect.as(Effect.logDebug("worker spawned").pipe(Effect.annotateLogs({ worker: worker.id })), worker)
        : Effect.succeed(worker)
    }),
    (worker) =>
      Effect.suspend(() => {
        state.counters.workers--
        state.counters.retired++
        return Ref.getUnsafe(state.config).debug
          ? Effect.logDebug("worker retired").pipe(Effect.annotateLogs({ worker: worker.id }))
          : Effect.void
      })
  )

const isIdle = (pool: Pool.Pool<Worker>, item: Item): boolean =>
  item.refCount === 0 && item.exit._tag === "Success" && !pool.state.invalidated.has(item)

const aliveCount = (pool: Pool.Pool<Worker>): number => pool.state.items.size - pool.state.invalidated.size

const retire = (pool: Pool.Pool<Worker>, item: Item, state: ManagerState): Effect.Effect<void> =>
  Effect.suspend(() =>
    // Checked again in the step that retires it: a put may have taken it since.
    isIdle(pool, item) && aliveCount(pool) > Ref.getUnsafe(state.config).minWorkersCount && item.exit._tag === "Success"
      ? Pool.invalidate(pool, item.exit.value)
      : Effect.void
  )

/**
 * Retires expired idle workers above the minimum, then sleeps until the next
 * one could expire or the config changes.
 */
const reaper =
  (state: ManagerState) =>
  (pool: Pool.Pool<Worker>): Effect.Effect<void> =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      while (true) {
        const config = Ref.getUnsafe(state.config)
        const changed = state.configChanged
        const ttl = Duration.isFinite(config.idleWorkerTimeout) ? Duration.toMillis(config.idleWorkerTimeout) : Infinity
        const now = clock.currentTimeMillisUnsafe()
        const expired: Array<Item> = []
        let nextExpiry = Infinity
        for (const item of pool.state.items) {
          if (!isIdle(pool, item)) continue
          const expiry = item.idleSince + ttl
          if (expiry <= now) expired.push(item)
          else nextExpiry = Math.min(nextExpiry, expiry)
        }
        expired.sort((a, b) => a.idleSince - b.idleSince)
        const surplus = Math.max(0, aliveCount(pool) - config.minWorkersCount)
        for (const item of expired.slice(0, surplus)) yield* retire(pool, item, state)
        // A worker that goes idle later expires later than anything seen now;
        // with nothing idle, the earliest possible expiry is a full ttl away.
        const delay = Math.max(1, Math.min(nextExpiry, now + ttl) - now)
        const sleep = Number.isFinite(delay) ? Effect.sleep(Duration.millis(delay)) : Effect.never
        yield* Effect.raceFirst(sleep, Deferred.await(changed))
      }
    })

/** Builds the pool of one running period, in `scope`. */
export const makePool = (state: ManagerState, scope: Scope.Scope): Effect.Effect<Pool.Pool<Worker>> =>
  Pool.makeWithStrategy({
    acquire: spawn(state),
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    strategy: { run: reaper(state), onAcquire: () => Effect.void, reclaim: () => Effect.undefined }
  }).pipe(Scope.provide(scope))

/**
 * Grows the pool to `minWorkersCount` workers by borrowing enough workers at
 * once (idle ones first, the pool spawns the rest) and handing them all back
 * idle. It counts with the manager's own counters, not the pool's state:
 * workers not serving a connection are first taken by the connections
 * reserved for a worker (the pool spawns for those that find none), and only
 * what is still missing after those spawns is spawned here, so growing to the
 * minimum never spawns past the maximum. Only while `Running`.
 */
export const ensureMin = (state: ManagerState, lifecycle: Lifecycle): Effect.Effect<void> =>
  Effect.suspend(() => {
    // Only a running manager grows: a stopping one is shutting its pool down.
    if (lifecycle._tag !== "Running") return Effect.void
    const { busy, workers } = state.counters
    const free = workers - busy
    const spawnsForReserved = Math.max(0, state.reserved - free)
    const missing = Ref.getUnsafe(state.config).minWorkersCount - workers - spawnsForReserved
    if (missing <= 0) return Effect.void
    // The borrowers queue behind the reserved connections in the pool.
    const borrow = Math.max(0, free - state.reserved) + missing
    return Effect.scoped(
      Effect.forEach(Array.from({ length: borrow }), () => Pool.get(lifecycle.period.pool), {
        concurrency: "unbounded",
        discard: true
      })
    ).pipe(
      // The pool interrupts borrowers once it shuts down: nothing to grow then.
      Effect.catchCause(() => Effect.void)
    )
  })
