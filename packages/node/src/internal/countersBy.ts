/**
 * A Prometheus counter with one series per value of a label (`reason`,
 * `code`), every value shown from the start at 0. The counts are plain
 * numbers the caller increments; the registry reads them when scraped
 * (`Metric.registerUnsafe` with a `get` hook, as core's metrics are), so
 * counting costs nothing on the hot path. Registered until the scope closes.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"

/** The counts of `name{label=value}` for each of `values`, to increment. */
export const make = <V extends string>(
  name: string,
  description: string,
  label: string,
  values: ReadonlyArray<V>
): Effect.Effect<Record<V, number>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const counts = Object.fromEntries(values.map((value) => [value, 0])) as Record<V, number>
    const context = yield* Effect.context<never>()
    const registrations = values.map((value) =>
      Metric.registerUnsafe(Metric.counter(name, { description, attributes: { [label]: value } }), context, {
        get: () => ({ count: counts[value], incremental: true }),
        update: () => {},
        modify: () => {}
      })
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const registration of registrations) registration.remove()
      })
    )
    return counts
  })
