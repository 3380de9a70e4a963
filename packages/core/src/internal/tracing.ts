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
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { Connection } from "../Connection.ts"
import type { AdmissionError, Ticket } from "./admission.ts"

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

/**
 * What a traced `put` records: when it began, under which span (the
 * caller's), and whether it queued (filled in by admission).
 */
export interface PutTrace extends Ticket {
  readonly parent: Tracer.AnySpan | undefined
  readonly startTime: bigint
}

/** Starts a put's record. */
export const startPut = (tracing: Tracing, parent: Tracer.AnySpan | undefined): PutTrace => ({
  parent,
  startTime: tracing.now(),
  queued: false
})

// A `pool.put` span, from the put's start to now.
const putSpan = (
  tracing: Tracing,
  trace: PutTrace,
  parent: Tracer.AnySpan | undefined,
  connection: Connection,
  reason: string,
  exit: Exit.Exit<unknown, unknown>
) => {
  const span = tracing.start("pool.put", parent, trace.startTime, "internal")
  span.attribute("pool.remote_address", connection.remoteAddress)
  span.attribute("pool.put.reason", reason)
  span.attribute("pool.put.waited_seconds", Number(tracing.now() - trace.startTime) / 1e9)
  tracing.end(span, exit)
}

/**
 * The `pool.connection` span of an admitted connection, started when its put
 * began; a put that queued gets its `pool.put` span under it.
 */
export const admitted = (tracing: Tracing, trace: PutTrace, connection: Connection): Tracer.Span => {
  const span = tracing.start("pool.connection", trace.parent, trace.startTime, "server")
  span.attribute("pool.remote_address", connection.remoteAddress)
  if (trace.queued) putSpan(tracing, trace, span, connection, "queued", Exit.void)
  return span
}

/** A refused (or interrupted) put's `pool.put` span, under the caller's span. */
export const refused = (
  tracing: Tracing,
  trace: PutTrace,
  connection: Connection,
  cause: Cause.Cause<AdmissionError>
): void => putSpan(tracing, trace, trace.parent, connection, refusal(trace, cause), Exit.failCause(cause))

const refusal = (trace: PutTrace, cause: Cause.Cause<AdmissionError>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "None") return "interrupted"
  switch (error.value._tag) {
    case "PoolBusyError":
      return trace.queued ? "queue timeout" : "busy"
    case "AddressLimitError":
      return "address limit"
    case "NotRunningError":
      return "not running"
  }
}

/** The worker a connection's span was lent. */
export const leased = (span: Tracer.Span, workerId: number): void => span.attribute("pool.worker_id", workerId)

/**
 * What a connection's span reports when it ends: a `ServedConnection`
 * (written out here so that `state.ts`, which imports this module's types,
 * is not imported back).
 */
export interface Served {
  readonly span: Tracer.Span | undefined
  readonly messages: number
  readonly bytesRead: number
  readonly transport: { readonly bytesWritten: number }
  readonly lease: { readonly _tag: string }
  readonly closeReason: string | undefined
}

/** Ends a connection's span with what the serve loop counted and why it closed. */
export const closed = (tracing: Tracing, served: Served, exit: Exit.Exit<void>): void => {
  const span = served.span!
  span.attribute("pool.messages", served.messages)
  span.attribute("pool.bytes_read", served.bytesRead)
  span.attribute("pool.bytes_written", served.transport.bytesWritten)
  span.attribute(
    "pool.close_reason",
    served.lease._tag === "Abandoned" ? "abandoned" : (served.closeReason ?? "closed")
  )
  tracing.end(span, exit)
}

/** A sampled message's `pool.message` span, under its connection's. */
export const message = (tracing: Tracing, connection: Tracer.Span, bytes: number): Tracer.Span => {
  const span = tracing.start("pool.message", connection, tracing.now(), "internal")
  span.attribute("pool.message.bytes", bytes)
  return span
}
