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

// Where count, sum, min and max sit, after the buckets, in the histogram's one array.
const bucketCount = durationBoundaries.length + 1
const COUNT = bucketCount
const SUM = bucketCount + 1
const MIN = bucketCount + 2
const MAX = bucketCount + 3

export const makeDurationHistogram = (): DurationHistogram => {
  // The bucket counts, then count, sum, min and max, in one typed array:
  // numbers kept there are stored in place (a closure's `let sum` would box a
  // new number on every observation), and an observation touches one object.
  const values = new Float64Array(bucketCount + 4)
  values[MIN] = Number.MAX_VALUE
  values[MAX] = -Number.MAX_VALUE
  return {
    observe(seconds) {
      let i = 0
      while (i < durationBoundaries.length && seconds > durationBoundaries[i]!) i++
      values[i]!++
      values[COUNT]!++
      values[SUM]! += seconds
      if (seconds < values[MIN]!) values[MIN] = seconds
      if (seconds > values[MAX]!) values[MAX] = seconds
    },
    state() {
      let cumulative = 0
      const buckets = durationBoundaries.map((boundary, i): [number, number] => {
        cumulative += values[i]!
        return [boundary, cumulative]
      })
      return { buckets, count: values[COUNT]!, sum: values[SUM]!, min: values[MIN]!, max: values[MAX]! }
    }
  }
}
