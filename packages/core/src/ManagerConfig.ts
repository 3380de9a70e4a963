/**
 * The configuration of a pool manager: the spec's `ManagerConfig` (debug,
 * bufferSize, min/max workers, clientsDeadline) plus the limits a server on an
 * open port needs (idle worker timeout, message size limit, drain timeout).
 *
 * Inputs are validated with Schema; every field is optional, and as in the
 * spec, `0` for `bufferSize` or `clientsDeadline` means "the default".
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { ConfigError } from "./PoolError.ts"

/**
 * A validated configuration, with every default applied.
 *
 * @category models
 * @since 0.1.0
 */
export interface ManagerConfig {
  /** Log the spec's events (put, spawn, reap, stop) at Debug level. */
  readonly debug: boolean
  /** Largest chunk read from a connection at once, in bytes; also the framing unit. */
  readonly bufferSize: number
  /** Workers kept alive while running, even when idle. */
  readonly minWorkersCount: number
  /** Most connections served at once; `0` means unlimited. */
  readonly maxWorkersCount: number
  /**
   * How long a connection may stay silent while a message is awaited before it
   * is closed; also how long a reply's write may make no progress (a client
   * not reading) before it fails and the connection is dropped.
   */
  readonly clientsDeadline: Duration.Duration
  /** How long a worker above `minWorkersCount` may stay idle before it is retired. */
  readonly idleWorkerTimeout: Duration.Duration
  /** Largest message accepted; a longer one closes its connection. */
  readonly maxMessageBytes: number
  /** How long `stop` waits for busy workers before interrupting them. */
  readonly drainTimeout: Duration.Duration
  /**
   * What `put` does when every worker is busy at `maxWorkersCount`: `"reject"`
   * fails at once (the spec's behaviour); `"queue"` waits up to `queueTimeout`
   * for a worker, with at most `queueSize` connections waiting.
   */
  readonly admissionPolicy: AdmissionPolicy
  /** Most connections waiting for a worker under the `"queue"` policy. */
  readonly queueSize: number
  /** Longest wait for a worker under the `"queue"` policy. */
  readonly queueTimeout: Duration.Duration
  /** Most connections admitted or waiting from one client address; `0` means no limit. */
  readonly maxConnectionsPerAddress: number
  /** Messages served on one connection before it is closed; `0` means no limit. */
  readonly maxMessagesPerConnection: number
}

/**
 * How `put` treats a connection when the pool is at `maxWorkersCount`.
 *
 * @category models
 * @since 0.1.0
 */
export type AdmissionPolicy = "reject" | "queue"

/**
 * What `make`, `layer` and `setConfig` accept. Durations take any
 * `Duration.Input` ("3 seconds", a number of milliseconds, a `Duration`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Input {
  readonly debug?: boolean | undefined
  readonly bufferSize?: number | undefined
  readonly minWorkersCount?: number | undefined
  readonly maxWorkersCount?: number | undefined
  readonly clientsDeadline?: Duration.Input | undefined
  readonly idleWorkerTimeout?: Duration.Input | undefined
  readonly maxMessageBytes?: number | undefined
  readonly drainTimeout?: Duration.Input | undefined
  readonly admissionPolicy?: AdmissionPolicy | undefined
  readonly queueSize?: number | undefined
  readonly queueTimeout?: Duration.Input | undefined
  readonly maxConnectionsPerAddress?: number | undefined
  readonly maxMessagesPerConnection?: number | undefined
}

/**
 * The defaults: the spec's (5120-byte buffer, 3 second deadline, no minimum,
 * no maximum, reject when busy) and this library's (2 second idle worker
 * timeout, 1 MiB messages, 30 second drain; when queueing, 100 waiting for at
 * most 1 second; no per-address or per-connection limits).
 *
 * @category constants
 * @since 0.1.0
 */
export const defaults: ManagerConfig = {
  debug: false,
  bufferSize: 5120,
  minWorkersCount: 0,
  maxWorkersCount: 0,
  clientsDeadline: Duration.seconds(3),
  idleWorkerTimeout: Duration.seconds(2),
  maxMessageBytes: 1024 * 1024,
  drainTimeout: Duration.seconds(30),
  admissionPolicy: "reject",
  queueSize: 100,
  queueTimeout: Duration.seconds(1),
  maxConnectionsPerAddress: 0,
  maxMessagesPerConnection: 0
}

const Count = Schema.Finite.check(
  Schema.isInt({ message: "expected a whole number" }),
  Schema.isGreaterThanOrEqualTo(0, { message: "expected a number >= 0" })
)

const Size = Count.check(Schema.isGreaterThanOrEqualTo(1, { message: "expected a number >= 1" }))

// Schema.DurationFromMillis turns NaN into a zero Duration, so a NaN (say
// `Number(process.env.DRAIN_MS)` with the variable unset) would silently mean
// "no drain at all": milliseconds must be a number, not NaN (Infinity is "never").
const Millis = Schema.Number.check(
  Schema.makeFilter((n) => !Number.isNaN(n) || "expected a number of milliseconds, not NaN")
).pipe(Schema.decodeTo(Schema.Duration, SchemaTransformation.durationFromMillis))

const NonNegativeDuration = Schema.Union([Schema.Duration, Schema.DurationFromString, Millis]).check(
  Schema.makeFilter((d) => !Duration.isNegative(d) || "expected a duration >= 0")
)

const InputSchema = Schema.Struct({
  debug: Schema.optional(Schema.Boolean),
  bufferSize: Schema.optional(Count),
  minWorkersCount: Schema.optional(Count),
  maxWorkersCount: Schema.optional(Count),
  clientsDeadline: Schema.optional(NonNegativeDuration),
  idleWorkerTimeout: Schema.optional(NonNegativeDuration),
  maxMessageBytes: Schema.optional(Size),
  drainTimeout: Schema.optional(NonNegativeDuration),
  admissionPolicy: Schema.optional(Schema.Literals(["reject", "queue"])),
  queueSize: Schema.optional(Count),
  queueTimeout: Schema.optional(NonNegativeDuration),
  maxConnectionsPerAddress: Schema.optional(Count),
  maxMessagesPerConnection: Schema.optional(Count)
})

const decodeInput = Schema.decodeUnknownEffect(InputSchema)
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()
const durationFields = ["clientsDeadline", "idleWorkerTimeout", "drainTimeout", "queueTimeout"] as const

const show = (value: unknown): string => {
  if (Duration.isDuration(value)) return Duration.format(value)
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
        const config: ManagerConfig = {
          debug: decoded.debug ?? base.debug,
          bufferSize: decoded.bufferSize === 0 ? defaults.bufferSize : (decoded.bufferSize ?? base.bufferSize),
          minWorkersCount: decoded.minWorkersCount ?? base.minWorkersCount,
          maxWorkersCount: decoded.maxWorkersCount ?? base.maxWorkersCount,
          clientsDeadline:
            decoded.clientsDeadline !== undefined && Duration.isZero(decoded.clientsDeadline)
              ? defaults.clientsDeadline
              : (decoded.clientsDeadline ?? base.clientsDeadline),
          idleWorkerTimeout: decoded.idleWorkerTimeout ?? base.idleWorkerTimeout,
          maxMessageBytes: decoded.maxMessageBytes ?? base.maxMessageBytes,
          drainTimeout: decoded.drainTimeout ?? base.drainTimeout,
          admissionPolicy: decoded.admissionPolicy ?? base.admissionPolicy,
          queueSize: decoded.queueSize ?? base.queueSize,
          queueTimeout: decoded.queueTimeout ?? base.queueTimeout,
          maxConnectionsPerAddress: decoded.maxConnectionsPerAddress ?? base.maxConnectionsPerAddress,
          maxMessagesPerConnection: decoded.maxMessagesPerConnection ?? base.maxMessagesPerConnection
        }
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
export const toJson = (config: ManagerConfig): Record<keyof ManagerConfig, number | boolean | string> => ({
  debug: config.debug,
  bufferSize: config.bufferSize,
  minWorkersCount: config.minWorkersCount,
  maxWorkersCount: config.maxWorkersCount,
  clientsDeadline: Duration.toMillis(config.clientsDeadline),
  idleWorkerTimeout: Duration.toMillis(config.idleWorkerTimeout),
  maxMessageBytes: config.maxMessageBytes,
  drainTimeout: Duration.toMillis(config.drainTimeout),
  admissionPolicy: config.admissionPolicy,
  queueSize: config.queueSize,
  queueTimeout: Duration.toMillis(config.queueTimeout),
  maxConnectionsPerAddress: config.maxConnectionsPerAddress,
  maxMessagesPerConnection: config.maxMessagesPerConnection
})
