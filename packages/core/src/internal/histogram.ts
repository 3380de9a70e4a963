/**
 * The callback-duration histogram: fixed buckets of seconds, updated on the
 * hot path without allocation and read as an Effect `Metric` state only when
 * somebody takes a snapshot.
 */
import type * as Metric from "effect/Metric"

/** Upper bounds of the callback duration histogram, in seconds. */
export const durationBoundaries: ReadonlyArray<number> = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
]

/** A fixed-bucket histogram of seconds, updated without allocation. */
export interface DurationHistogram {
  readonly observe: (seconds: number) => void
  readonly state: () => Metric.HistogramState
}

export const makeDurationHistogram = (): DurationHistogram => {
  const counts = new Float64Array(durationBoundaries.length + 1)
  // count, sum, min, max: numbers kept in a typed array are stored in place,
  // where a closure's `let sum` would box a new number on every observation.
  const totals = Float64Array.of(0, 0, Number.MAX_VALUE, -Number.MAX_VALUE)
  return {
    observe(seconds) {
      let i = 0
      while (i < durationBoundaries.length && seconds > durationBoundaries[i]!) i++
      counts[i]!++
      totals[0]!++
      totals[1]! += seconds
      if (seconds < totals[2]!) totals[2] = seconds
      if (seconds > totals[3]!) totals[3] = seconds
    },
    state() {
      let cumulative = 0
      const buckets = durationBoundaries.map((boundary, i): [number, number] => {
        cumulative += counts[i]!
        return [boundary, cumulative]
      })
      return { buckets, count: totals[0]!, sum: totals[1]!, min: totals[2]!, max: totals[3]! }
    }
  }
}
