/**
 * A bounded wait for the node tests, which run on real time: a wait that has
 * not ended within its bound fails on an assertion naming what was expected,
 * well before the test's own timeout (which would say only that it ran long).
 */
import { assert } from "@effect/vitest"
import { Duration, Effect } from "effect"

/** `effect`, failed with an assertion naming `what` unless it ends within `bound`. */
export const within = <A, E, R>(effect: Effect.Effect<A, E, R>, bound: Duration.Input, what: string) =>
  Effect.timeoutOrElse(effect, {
    duration: bound,
    orElse: () =>
      Effect.sync(() => assert.fail(`expected ${what} within ${Duration.format(Duration.fromInputUnsafe(bound))}`))
  })
