/**
 * The pool's spans, made with the tracer of the context the manager was made
 * in (Effect's `Tracer.Tracer`), so they go wherever the application's own
 * spans go: an OTLP exporter, a test's recording tracer.
 *
 * Whether to trace is decided once, in `make`: with no tracer installed (the
 * default `Tracer.nativeTracer`, whose spans reach nobody) or with
 * `References.TracerEnabled` off, there is no `Tracing` at all, and every
 * place that could make a span tests one `undefined` instead.
 *
 * Spans are made with the tracer's own `span` rather than `Effect.withSpan`:
 * a connection's span starts when `put` is called and ends when the
 * connection closes, which are not the bounds of one effect, and a
 * synchronous callback's message spans are made outside any fiber.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"

/** Makes and ends the pool's spans. */
export interface Tracing {
  /** The time to start or end a span at (0 with `References.TracerTimingEnabled` off, as Effect's own spans). */
  readonly now: () => bigint
  /** Starts a span at `startTime`, under `parent` (a root span without one). */
  readonly start: (
    name: string,
    parent: Tracer.AnySpan | undefined,
    startTime: bigint,
    kind: Tracer.SpanKind
  ) => Tracer.Span
  /** Ends `span` now with `exit`. */
  readonly end: (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>) => void
}

/** Span names and attribute keys, written once. */
export const names = {
  connection: "pool.connection",
  put: "pool.put",
  message: "pool.message"
} as const

/** A `Tracing` for the tracer of `context`, or `undefined` when nothing would see the spans. */
export const make = (context: Context.Context<never>): Tracing | undefined => {
  const tracer = Context.get(context, Tracer.Tracer)
  if (tracer === Tracer.nativeTracer || !Context.get(context, References.TracerEnabled)) return undefined
  const clock = Context.get(context, Clock.Clock)
  const now = Context.get(context, References.TracerTimingEnabled)
    ? () => clock.currentTimeNanosUnsafe()
    : () => BigInt(0)
  // Effect's rule for its own spans: below the minimum trace level, not sampled.
  const sampled = !LogLevel.isGreaterThan(
    Context.get(context, Tracer.MinimumTraceLevel),
    Context.get(context, Tracer.CurrentTraceLevel)
  )
  return {
    now,
    start: (name, parent, startTime, kind) =>
      tracer.span({
        name,
        parent: parent === undefined ? Option.none() : Option.some(parent),
        annotations: Context.empty(),
        links: [],
        startTime,
        kind,
        root: parent === undefined,
        sampled: sampled && (parent === undefined || parent.sampled)
      }),
    end: (span, exit) => span.end(now(), exit)
  }
}
