/**
 * The configuration of a pool manager: the Go original's `ManagerConfig`
 * (debug, bufferSize, min/max workers, clientsDeadline; see SPEC.md) plus the
 * limits a server on an open port needs (idle worker timeout, message size
 * limit, drain timeout, admission policy, per-address and per-connection
 * limits).
 *
 * Inputs are validated with Schema; every field is optional, and as in the
 * Go original, `0` for `bufferSize` or `clientsDeadline` means "the default".
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as Framing from "./Framing.ts"
import { ConfigError } from "./PoolError.ts"

const Count = Schema.Finite.check(
  Schema.isInt({ message: "expected a whole number" }),
  Schema.isGreaterThanOrEqualTo(0, { message: "expected a number >= 0" })
)

const Size = Count.check(Schema.isGreaterThanOrEqualTo(1, { message: "expected a number >= 1" }))

const Rate = Schema.Finite.check(
  Schema.isBetween({ minimum: 0, maximum: 1 }, { message: "expected a number from 0 to 1" })
)

// Schema.DurationFromMillis turns NaN into a zero Duration, so a NaN (say
// `Number(process.env.DRAIN_MS)` with the variable unset) would silently mean
// "no drain at all": milliseconds must be a number, not NaN (Infinity is "never").
const Millis = Schema.Number.check(
  Schema.makeFilter((n) => !Number.isNaN(n) || "expected a number of milliseconds, not NaN")
).pipe(Schema.decodeTo(Schema.Duration, SchemaTransformation.durationFromMillis))

// Schema.Duration comes last: an input that fails every member is reported with the first member's message
// (see toConfigError), and the string and milliseconds members explain a bad string or a NaN better.
const NonNegativeDuration = Schema.Union([Schema.DurationFromString, Millis, Schema.Duration]).check(
  Schema.makeFilter((d) => !Duration.isNegative(d) || "expected a duration >= 0")
)

const Policy = Schema.Literals(["reject", "queue"])

// A Framing value (validated), or its spec as `Framing.parse` reads it ("lines", "length:4:be").
const FramingSchema = Schema.declareConstructor<Framing.Framing, Framing.Framing | string>()(
  [],
  () => (input) => {
    if (typeof input === "string") {
      const parsed = Framing.parse(input)
      return parsed._tag === "Success"
        ? Effect.succeed(parsed.success)
        : Effect.fail(new SchemaIssue.InvalidValue({ message: parsed.failure }))
    }
    if (!Framing.isFraming(input))
      return Effect.fail(
        new SchemaIssue.InvalidValue({ message: 'expected a Framing or a framing spec such as "lines"' })
      )
    const problem = Framing.validate(input)
    return problem === undefined
      ? Effect.succeed(input)
      : Effect.fail(new SchemaIssue.InvalidValue({ message: problem }))
  },
  { expected: "a Framing or a framing spec" }
)

/**
 * How `put` treats a connection when the pool is at `maxWorkersCount`.
 *
 * @category models
 * @since 0.1.0
 */
export type AdmissionPolicy = typeof Policy.Type

/** A field of the configuration: how an input value is validated, and its default. */
interface Field<S extends Schema.Top> {
  readonly schema: S
  readonly fallback: S["Type"]
}

const field = <S extends Schema.Top>(schema: S, fallback: S["Type"]): Field<S> => ({ schema, fallback })

/**
 * The fields of the configuration, written once: their documentation, their
 * validation and their default. `ManagerConfig`, `Input`, `defaults`, the
 * input schema, `make` and `toJson` are all derived from this table.
 */
const fields = {
  /** Log the Go original's events (put, spawn, reap, stop) at Debug level. */
  debug: field(Schema.Boolean, false),
  /**
   * The framing unit, in bytes (the Go original's read buffer): a message ends with the first read that
   * does not fill it (`0` in an input: the default).
   */
  bufferSize: field(Count, 5120),
  /** Workers kept alive while running, even when idle. */
  minWorkersCount: field(Count, 0),
  /** Most connections served at once; `0` means unlimited. */
  maxWorkersCount: field(Count, 0),
  /**
   * How long a connection may stay silent while a message is awaited before it
   * is closed; also how long a reply's write may make no progress (a client
   * not reading) before it fails and the connection is dropped (`0` in an
   * input: the default).
   */
  clientsDeadline: field(NonNegativeDuration, Duration.seconds(3)),
  /** How long a worker above `minWorkersCount` may stay idle before it is retired. */
  idleWorkerTimeout: field(NonNegativeDuration, Duration.seconds(2)),
  /** Largest message accepted; a longer one closes its connection. */
  maxMessageBytes: field(Size, 1024 * 1024),
  /** How long `stop` waits for busy workers before interrupting them. */
  drainTimeout: field(NonNegativeDuration, Duration.seconds(30)),
  /**
   * What `put` does when every worker is busy at `maxWorkersCount`: `"reject"`
   * fails at once (the Go original's behaviour); `"queue"` waits up to
   * `queueTimeout` for a worker, with at most `queueSize` connections waiting.
   */
  admissionPolicy: field(Policy, "reject"),
  /** Most connections waiting for a worker under the `"queue"` policy. */
  queueSize: field(Count, 100),
  /** Longest wait for a worker under the `"queue"` policy. */
  queueTimeout: field(NonNegativeDuration, Duration.seconds(1)),
  /** Most connections admitted or waiting from one client address; `0` means no limit. */
  maxConnectionsPerAddress: field(Count, 0),
  /** Messages served on one connection before it is closed; `0` means no limit. */
  maxMessagesPerConnection: field(Count, 0),
  /**
   * The share of messages (0 to 1) traced with a `pool.message` span under
   * their connection's span, when a tracer is installed; `0` traces none.
   */
  messageSpanSampleRate: field(Rate, 0),
  /**
   * How messages are cut from a connection's bytes (see `Framing`): the Go original's rule by default, or lines,
   * a delimiter, a length field, a decoder of one's own. An input may give its spec (`"lines"`, `"length:4:be"`).
   * `setConfig` applies it to connections admitted afterwards; a connection keeps the framing it started with.
   */
  framing: field(FramingSchema, Framing.goRule)
}

type Fields = typeof fields

/** Fields where `0` in an input selects the default, as in the Go original. */
const zeroMeansDefault: ReadonlySet<keyof Fields> = new Set(["bufferSize", "clientsDeadline"])

const keys = Object.keys(fields) as ReadonlyArray<keyof Fields>

/**
 * A validated configuration, with every default applied.
 *
 * @category models
 * @since 0.1.0
 */
export type ManagerConfig = { readonly [K in keyof Fields]: Fields[K]["fallback"] }

/**
 * What `make`, `layer` and `setConfig` accept: any subset of the fields.
 * Durations take any `Duration.Input` ("3 seconds", a number of milliseconds,
 * a `Duration`).
 *
 * @category models
 * @since 0.1.0
 */
export type Input = {
  readonly [K in keyof Fields]?:
    | (Fields[K]["fallback"] extends Duration.Duration
        ? Duration.Input
        : Fields[K]["fallback"] extends Framing.Framing
          ? Framing.Framing | string
          : Fields[K]["fallback"])
    | undefined
}

/**
 * The defaults: the Go original's (5120-byte buffer, 3 second deadline, no
 * minimum, no maximum, reject when busy) and this library's (2 second idle
 * worker timeout, 1 MiB messages, 30 second drain; when queueing, 100 waiting
 * for at most 1 second; no per-address or per-connection limits).
 *
 * @category constants
 * @since 0.1.0
 */
export const defaults: ManagerConfig = Object.fromEntries(
  keys.map((key) => [key, fields[key].fallback])
) as ManagerConfig

const InputSchema = Schema.Struct(
  Object.fromEntries(keys.map((key) => [key, Schema.optional(fields[key].schema)])) as {
    readonly [K in keyof Fields]: Schema.optional<Fields[K]["schema"]>
  }
)

const decodeInput = Schema.decodeUnknownEffect(InputSchema)
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()
const durationFields = keys.filter((key) => Duration.isDuration(defaults[key]))

const show = (value: unknown): string => {
  if (Duration.isDuration(value)) return Duration.format(value)
  if (Framing.isFraming(value)) return Framing.format(value)
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number") return String(value)
  if (typeof value === "bigint") return `${value}n`
  if (value === undefined) return "undefined"
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

// Duration.Input also allows bigint nanoseconds, [seconds, nanos] tuples and
// { seconds, millis, ... } objects: turn those into Durations before Schema
// sees them, so every form `Duration` itself accepts is accepted here too.
const normalizeDurations = (input: Record<string, unknown>): Record<string, unknown> => {
  let out = input
  for (const field of durationFields) {
    const value = input[field]
    if (value === undefined || typeof value === "string" || typeof value === "number" || Duration.isDuration(value))
      continue
    const decoded = Duration.fromInput(value as Duration.Input)
    if (decoded._tag === "Some") out = { ...out, [field]: decoded.value }
  }
  return out
}

const toConfigError = (input: unknown, issue: SchemaIssue.Issue): ConfigError => {
  const seen = new Set<string>()
  const issues: Array<{ field: string; value: string; message: string }> = []
  for (const found of formatIssues(issue).issues) {
    const path = (found.path ?? []).map(String)
    const field = path.length === 0 ? "config" : path.join(".")
    // Schema reports every failed check of a field; the first one says enough.
    if (seen.has(field)) continue
    seen.add(field)
    const value =
      path.length === 0
        ? input
        : path.reduce<unknown>((at, key) => (Predicate.isObject(at) ? (at as any)[key] : undefined), input)
    // Optional fields are unions with undefined: say only what a value may be.
    issues.push({ field, value: show(value), message: found.message.replace(/ \| undefined$/, "") })
  }
  return new ConfigError({ issues })
}

const relationError = (config: ManagerConfig): ConfigError | undefined =>
  config.maxWorkersCount > 0 && config.minWorkersCount > config.maxWorkersCount
    ? new ConfigError({
        issues: [
          {
            field: "minWorkersCount",
            value: String(config.minWorkersCount),
            message: `expected at most maxWorkersCount (${config.maxWorkersCount}), or maxWorkersCount = 0 for no maximum`
          }
        ]
      })
    : undefined

/**
 * Validates `input` and applies it over `base` (the defaults unless given):
 * fields left out keep the base's value, `0` for `bufferSize` or
 * `clientsDeadline` selects the default. Unknown fields are rejected, so a
 * misspelt option cannot be silently ignored.
 *
 * @example
 * ```ts
 * import { ManagerConfig } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const config = yield* ManagerConfig.make({ maxWorkersCount: 10, clientsDeadline: "5 seconds" })
 *   ManagerConfig.toJson(config).clientsDeadline // 5000 (milliseconds)
 *   // Over a base: fields left out keep its values (maxWorkersCount stays 10).
 *   const queued = yield* ManagerConfig.make({ admissionPolicy: "queue", queueTimeout: 500 }, config)
 *   // A bad input fails with a ConfigError naming the field and its value.
 *   const error = yield* Effect.flip(ManagerConfig.make({ minWorkersCount: 20, maxWorkersCount: 10 }))
 *   error.issues[0]?.field // "minWorkersCount"
 *   return queued
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (input: Input = {}, base: ManagerConfig = defaults): Effect.Effect<ManagerConfig, ConfigError> =>
  Effect.suspend(() => {
    if (!Predicate.isObject(input) || Array.isArray(input)) {
      return Effect.fail(
        new ConfigError({ issues: [{ field: "config", value: show(input), message: "expected an object" }] })
      )
    }
    return decodeInput(normalizeDurations(input as Record<string, unknown>), {
      errors: "all",
      onExcessProperty: "error"
    }).pipe(
      Effect.mapError((error) => toConfigError(input, error.issue)),
      Effect.flatMap((decoded) => {
        const merged: Record<string, unknown> = {}
        for (const key of keys) {
          const value = decoded[key]
          const isZero = value === 0 || (Duration.isDuration(value) && Duration.isZero(value))
          merged[key] = value === undefined ? base[key] : isZero && zeroMeansDefault.has(key) ? defaults[key] : value
        }
        const config = merged as ManagerConfig
        const error = relationError(config)
        return error === undefined ? Effect.succeed(config) : Effect.fail(error)
      })
    )
  })

/**
 * The configuration as a plain JSON-friendly object (durations in
 * milliseconds), e.g. for logs, `--help` output or a config file.
 *
 * @category conversions
 * @since 0.1.0
 */
export const toJson = (config: ManagerConfig): Record<keyof ManagerConfig, number | boolean | string> =>
  Object.fromEntries(
    keys.map((key) => {
      const value = config[key]
      if (Framing.isFraming(value)) return [key, Framing.format(value)]
      return [key, Duration.isDuration(value) ? Duration.toMillis(value) : value]
    })
  ) as Record<keyof ManagerConfig, number | boolean | string>
