/**
 * Every log line a test's effect writes, Debug included, with its level and
 * annotations (the framing helpers' `collecting` keeps warnings only).
 */
import { Effect, Logger, References } from "effect"

/** A log line as the test sees it. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Runs `effect` with every log line, Debug included, going to `logged`. */
export const logging =
  (logged: Array<LogLine>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(
        Logger.CurrentLoggers,
        new Set([
          Logger.make(({ fiber, logLevel, message }) => {
            logged.push({
              level: logLevel,
              message: Array.isArray(message) ? message.join(" ") : String(message),
              annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
            })
          })
        ])
      ),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
