/**
 * The log lines a test's effect writes, with their level and annotations, in
 * place of the default logger (the shape of core's test/utils/logs.ts, as a
 * layer).
 */
import { Logger, References } from "effect"

/** A log line as the test sees it. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** A logger layer that pushes every line it is given to `lines`. */
export const capturingLogs = (lines: Array<LogLine>) =>
  Logger.layer([
    Logger.make(({ fiber, logLevel, message }) => {
      lines.push({
        level: logLevel,
        message: Array.isArray(message) ? message.join(" ") : String(message),
        annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
      })
    })
  ])
