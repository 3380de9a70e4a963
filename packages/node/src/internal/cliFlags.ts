/**
 * The pieces the CLI's flags are built from: the schemas of counts, sizes,
 * ports and hosts, a duration parser, flag constructors that show their
 * default in `--help`, and the table of the pool's flags (one row per
 * `ManagerConfig` field, so a field without a flag does not compile).
 */
import * as Framing from "@pool-manager/core/Framing"
import type * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as Flag from "effect/cli/Flag"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { withEnv } from "./cliEnv.ts"
import { showDuration } from "./logFields.ts"

const units: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(ns|nanos?)$/, 1e-6],
  [/^(us|µs|micros?)$/, 1e-3],
  [/^(ms|millis?)$/, 1],
  [/^(s|secs?|seconds?)$/, 1000],
  [/^(m|mins?|minutes?)$/, 60_000],
  [/^(h|hours?)$/, 3_600_000],
  [/^(d|days?)$/, 86_400_000],
  [/^(w|weeks?)$/, 604_800_000]
]

export const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "expected a whole number >= 0" }))
export const Size = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "expected a whole number >= 1" }))
export const Port = Schema.Int.check(
  Schema.isBetween({ minimum: 0, maximum: 65535 }, { message: "expected a port 0-65535" })
)
export const Host = Schema.String.check(Schema.isNonEmpty({ message: "expected a host name or address" }))

export const described = <A>(flag: Flag.Flag<A>, description: string, fallback: unknown): Flag.Flag<Option.Option<A>> =>
  flag.pipe(Flag.withDescription(`${description} (default: ${String(fallback)})`), Flag.optional)

export const durationFlag = (name: string, description: string, fallback: Duration.Duration) =>
  described(
    Flag.String(name).pipe(Flag.filterMap(parseDuration, durationExpected), Flag.withMetavar("duration")),
    description,
    showDuration(fallback)
  )

export const textFlag = (name: string, metavar: string, description: string, fallback: string) =>
  described(Flag.String(name).pipe(Flag.withMetavar(metavar)), description, fallback)

export const fileFlag = (name: string, description: string) =>
  described(Flag.File(name, { mustExist: true }).pipe(Flag.withMetavar("file")), description, "none")

export const countFlag = (name: string, schema: typeof Count, description: string, fallback: number) =>
  described(Flag.Int(name).pipe(Flag.withSchema(schema)), description, fallback)

// The port of an optional endpoint (off unless given) and the interface it binds.
export const portFlag = (name: string, description: string, fallback: number | undefined) =>
  described(Flag.Int(name).pipe(Flag.withSchema(Port)), description, fallback ?? "off")

export const hostFlag = (name: string, description: string, fallback: string) =>
  described(Flag.String(name).pipe(Flag.withSchema(Host)), description, fallback)

// A text flag turned into a value by `parse`; `expected` says what it takes when that fails.
export const parsedFlag = <A>(
  name: string,
  metavar: string,
  parse: (text: string) => Option.Option<A>,
  expected: string,
  description: string,
  fallback: unknown
) =>
  described(
    Flag.String(name).pipe(
      Flag.filterMap(parse, () => expected),
      Flag.withMetavar(metavar)
    ),
    description,
    fallback
  )

// The pool's flags, one row per ManagerConfig field: the flag's name, and how
// to build it given the field's default (shown by --help). `flags`,
// `Settings`, `flagNames` and the fields the flags set are all read from here.
export interface PoolFlag<K extends keyof ManagerConfig.ManagerConfig> {
  readonly name: string
  readonly make: (
    name: string,
    fallback: ManagerConfig.ManagerConfig[K]
  ) => Flag.Flag<Option.Option<ManagerConfig.ManagerConfig[K]>>
}

const poolFlag = <K extends keyof ManagerConfig.ManagerConfig>(
  name: string,
  make: PoolFlag<K>["make"]
): PoolFlag<K> => ({
  name,
  make
})

const queued = "(queue policy)"

export const poolFlags: { readonly [K in keyof ManagerConfig.ManagerConfig]: PoolFlag<K> } = {
  minWorkersCount: poolFlag<"minWorkersCount">("min-workers", (name, fallback) =>
    countFlag(name, Count, "Workers kept alive even when idle", fallback)
  ),
  maxWorkersCount: poolFlag<"maxWorkersCount">("max-workers", (name, fallback) =>
    countFlag(name, Count, "Most connections served at once; 0 = unlimited", fallback)
  ),
  bufferSize: poolFlag<"bufferSize">("buffer-size", (name, fallback) =>
    countFlag(name, Count, "Framing unit in bytes: a read that does not fill it ends a message; 0 = 5120", fallback)
  ),
  clientsDeadline: poolFlag<"clientsDeadline">("clients-deadline", (name, fallback) =>
    durationFlag(name, "Close a connection silent, or not reading its replies, this long; 0 = 3s", fallback)
  ),
  idleWorkerTimeout: poolFlag<"idleWorkerTimeout">("idle-worker-timeout", (name, fallback) =>
    durationFlag(name, "Retire extra workers idle this long", fallback)
  ),
  maxMessageBytes: poolFlag<"maxMessageBytes">("max-message-bytes", (name, fallback) =>
    countFlag(name, Size, "Largest message accepted", fallback)
  ),
  drainTimeout: poolFlag<"drainTimeout">("drain-timeout", (name, fallback) =>
    durationFlag(name, "On SIGINT/SIGTERM, wait this long for busy workers", fallback)
  ),
  admissionPolicy: poolFlag<"admissionPolicy">("admission-policy", (name, fallback) =>
    described(
      Flag.Literals(name, ["reject", "queue"]).pipe(Flag.withMetavar("reject|queue")),
      "When every worker is busy: refuse at once, or wait in a queue",
      fallback
    )
  ),
  queueSize: poolFlag<"queueSize">("queue-size", (name, fallback) =>
    countFlag(name, Count, `Most connections waiting for a worker ${queued}`, fallback)
  ),
  queueTimeout: poolFlag<"queueTimeout">("queue-timeout", (name, fallback) =>
    durationFlag(name, `Longest wait for a worker ${queued}`, fallback)
  ),
  maxConnectionsPerAddress: poolFlag<"maxConnectionsPerAddress">("max-connections-per-address", (name, fallback) =>
    countFlag(name, Count, "Most connections from one client address; 0 = no limit", fallback)
  ),
  maxMessagesPerConnection: poolFlag<"maxMessagesPerConnection">("max-messages-per-connection", (name, fallback) =>
    countFlag(name, Count, "Close a connection after this many messages; 0 = no limit", fallback)
  ),
  messageSpanSampleRate: poolFlag<"messageSpanSampleRate">("message-span-sample-rate", (name, fallback) =>
    described(
      Flag.Finite(name).pipe(Flag.withMetavar("0..1")),
      "Share of messages traced with a pool.message span when tracing (--otlp-endpoint)",
      fallback
    )
  ),
  framing: poolFlag<"framing">("framing", (name, fallback) =>
    described(
      Flag.String(name).pipe(
        Flag.mapTryCatch(
          (spec) => Result.getOrThrowWith(Framing.parse(spec), (problem) => problem),
          (problem) => String(problem)
        ),
        Flag.withMetavar("spec")
      ),
      "How messages are cut: go (a read that does not fill --buffer-size ends one), lines[:MAX], delimiter:BYTES[:MAX], length:1|2|4|8[:be|le][:offset=N,adjust=N,strip=N,max=N]",
      Framing.format(fallback)
    )
  ),
  debug: poolFlag<"debug">("debug", (name, fallback) =>
    described(Flag.Boolean(name), "Log the pool's events and show Debug logs (off: --no-debug)", fallback)
  )
}

export type PoolField = keyof ManagerConfig.ManagerConfig
export const poolFields = Object.keys(poolFlags) as ReadonlyArray<PoolField>

export const makePoolFlags = (config: ManagerConfig.ManagerConfig) =>
  Object.fromEntries(
    poolFields.map((field) => {
      const { name, make } = poolFlags[field] as PoolFlag<typeof field>
      return [field, withEnv(make(name, config[field] as never), name)]
    })
  ) as { readonly [K in PoolField]: Flag.Flag<Option.Option<ManagerConfig.ManagerConfig[K]>> }

// What a duration flag takes; a number without a unit gets a hint, as `5`
// could mean 5 seconds as well as 5 ms.
export const durationExpected = (text: string): string => {
  const number = text.trim()
  return /^\d+(?:\.\d+)?$/.test(number)
    ? `a duration with a unit: ${number} alone is ambiguous (${number}s? ${number}ms?)`
    : "a duration >= 0 such as 3s, 500ms, 500 millis or 2 seconds"
}

// Durations as people type them; see `NodeCliConfig.parseDuration`. A bare
// number is refused (is `5` seconds or ms?), except 0, the same in every unit.
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const input = text.trim().toLowerCase()
  if (input === "infinity") return Option.some(Duration.infinity)
  if (/^0+(?:\.0+)?$/.test(input)) return Option.some(Duration.zero)
  const match = /^(\d+(?:\.\d+)?)\s*([a-zµ]*)$/.exec(input)
  const unit = match === null ? undefined : units.find(([pattern]) => pattern.test(match[2]!))
  return unit === undefined ? Option.none() : Option.some(Duration.millis(Number(match![1]) * unit[1]))
}
