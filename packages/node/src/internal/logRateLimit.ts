/**
 * Warnings that cannot flood the log. Some warnings repeat once per
 * connection (a refused PROXY header, a failed TLS handshake, an accept
 * error): under attack or exhaustion they would come by the thousand. A
 * limiter lets the first few of a kind through in each window and counts the
 * rest; when the window ends, one line says how many were suppressed. The
 * metrics counting those events stay exact: only the log is thinned.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface Options {
  /** What the warnings are about, for the summary line (e.g. `TLS handshake failures`). */
  readonly kind: string
  /** Lines let through per window (default 5). */
  readonly burst?: number | undefined
  /** The window (default 10 seconds). */
  readonly window?: Duration.Input | undefined
}

/** Logs `line` (an Effect log call) unless its kind already logged `burst` lines in this window. */
export type Limited = (line: Effect.Effect<void>) => void

/** A limiter running its lines in the current context; the pending summary is written when the scope closes. */
export const make = (options: Options): Effect.Effect<Limited, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const run = (effect: Effect.Effect<void>) => void Effect.runForkWith(context)(effect)
    const burst = options.burst ?? 5
    const windowMillis = Duration.toMillis(Duration.fromInputUnsafe(options.window ?? "10 seconds"))
    let windowStart = 0
    let logged = 0
    let suppressed = 0
    let timer: NodeJS.Timeout | undefined
    const summarize = () => {
      timer = undefined
      if (suppressed === 0) return
      const count = suppressed
      suppressed = 0
      run(
        Effect.logWarning(
          `${options.kind}: ${count} more like this not logged in the last ${Duration.format(Duration.millis(windowMillis))} (the metrics count every one)`
        ).pipe(Effect.annotateLogs({ suppressed: count }))
      )
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (timer !== undefined) clearTimeout(timer)
        summarize()
      })
    )
    return (line) => {
      const now = Date.now()
      if (now - windowStart >= windowMillis) {
        windowStart = now
        logged = 0
      }
      if (logged < burst) {
        logged++
        return run(line)
      }
      suppressed++
      if (timer === undefined) {
        timer = setTimeout(summarize, Math.max(1, windowStart + windowMillis - now))
        timer.unref()
      }
    }
  })
