/**
 * The server's log output: its format (`text`, Effect's default logger, or
 * `json`, one JSON object per line for log shippers) and a minimum level that
 * can change while the program runs.
 *
 * A JSON line written inside a span carries the span's `traceId` and
 * `spanId`, so a log shipper can join it to the trace (with `--otlp-endpoint`,
 * the same ids the spans are exported with).
 *
 * The level is read per log line rather than fixed in the context, because
 * fibers serving connections keep the context they were started with: with
 * `References.MinimumLogLevel` alone, turning `debug` on by reloading the
 * config file would not show the pool's Debug events.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Formatter from "effect/Formatter"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import { isGreaterThanOrEqualTo } from "effect/LogLevel"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { LogFormat } from "./NodeCliConfig.ts"

/**
 * Options for `provide`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** How lines are written (default `text`). */
  readonly format?: LogFormat | undefined
  /** The lowest level `minimumLevel` can ever return: what the fibers are allowed to emit at all. */
  readonly floor: LogLevel.LogLevel
  /** The level a line needs to be written, read for every line. */
  readonly minimumLevel: () => LogLevel.LogLevel
}

/**
 * Effect's JSON lines (`Logger.consoleJson`), plus `traceId` and `spanId` when
 * the line is written inside a span. Spans made while tracing is disabled
 * carry no ids worth joining, so their lines carry none.
 *
 * @category constructors
 * @since 0.1.0
 */
export const jsonLogger: Logger.Logger<unknown, void> = Logger.withConsoleLog(
  Logger.make((options) => {
    const line = Logger.formatStructured.log(options)
    const span = Context.getOrUndefined(options.fiber.context, Tracer.ParentSpan)
    if (span === undefined || Context.get(span.annotations, Tracer.DisablePropagation))
      return Formatter.formatJson(line)
    return Formatter.formatJson({ ...line, traceId: span.traceId, spanId: span.spanId })
  })
)

/**
 * The logger for `format`, writing to stdout.
 *
 * @category constructors
 * @since 0.1.0
 */
export const logger = (format: LogFormat = "text"): Logger.Logger<unknown, void> =>
  format === "json" ? jsonLogger : Logger.defaultLogger

/**
 * Runs `self` with the chosen log format and a minimum level read per line.
 * Effect's tracer logger (log lines as span events) is kept.
 *
 * @example
 * ```ts
 * import { NodeLogging } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * // JSON lines; Debug lines only while `verbose` is set, e.g. by a reloaded
 * // config file, without restarting the fibers that log them.
 * let verbose = false
 * const program = Effect.gen(function* () {
 *   yield* Effect.logDebug("not written")
 *   verbose = true
 *   yield* Effect.logDebug("written")
 * }).pipe(NodeLogging.provide({ format: "json", floor: "Debug", minimumLevel: () => (verbose ? "Debug" : "Info") }))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const provide =
  (options: Options) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    const base = logger(options.format)
    const filtered = Logger.make<unknown, void>((line) => {
      if (isGreaterThanOrEqualTo(line.logLevel, options.minimumLevel())) base.log(line)
    })
    return self.pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([filtered, Logger.tracerLogger])),
      Effect.provideService(References.MinimumLogLevel, options.floor)
    )
  }
