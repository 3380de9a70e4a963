/**
 * A short Effect program of many kinds of effects, for `floor --mixed`
 * (BENCHMARKS.md, "The floor's inline caches"). Effect's run loop dispatches
 * every step with a symbol-keyed property load (`effect[evaluate](fiber)`),
 * and V8 caches such a load per call site for up to four object shapes; past
 * that the site is megamorphic and each load goes through a generic lookup.
 * The bare floor runs only its own few effects, so its run loop stays
 * polymorphic, which no real Effect program does: the pool server's own start
 * (layers, `Pool`, `Semaphore`, `Deferred`, generators) is already past four.
 * Running this first gives the floor the run loop any Effect program has.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

class Offset extends Context.Service<Offset, number>()("bench/Offset") {}

// One of each common kind: generator steps, Ref, a concurrent all, a caught
// failure, map, match, an uninterruptible region and a yield, a scope with a
// finalizer, a provided layer, a sleep.
const program = Effect.gen(function* () {
  const ref = yield* Ref.make(0)
  yield* Ref.update(ref, (n) => n + 1)
  yield* Effect.all([Effect.succeed(1), Effect.sync(() => 2), Effect.suspend(() => Effect.succeed(3))], {
    concurrency: 2
  })
  yield* Effect.catch(Effect.fail("expected"), () => Effect.void)
  yield* Effect.map(Effect.succeed(1), (n) => n + 1)
  yield* Effect.matchCauseEffect(Effect.succeed(1), { onFailure: () => Effect.void, onSuccess: () => Effect.void })
  yield* Effect.uninterruptible(Effect.yieldNow)
  yield* Effect.scoped(Effect.addFinalizer(() => Effect.void))
  yield* Effect.provide(
    Effect.map(Offset, (n) => n + 1),
    Layer.succeed(Offset, 1)
  )
  yield* Effect.sleep(1)
})

/** Runs the program 50 times (under 100 ms), so its effects have passed through the run loop. */
export const runMixedEffects = (): Promise<unknown> => Effect.runPromise(Effect.repeat(program, { times: 50 }))
