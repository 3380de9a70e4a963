/**
 * The standalone server as an `effect/cli` command: flags for where to listen
 * and for the pool's settings, validation that names the offending
 * flag, one parsable "listening" log line, and a graceful stop on SIGINT or
 * SIGTERM that exits with code 0.
 *
 * The pieces are exported separately so a bigger CLI can reuse them: `flags`
 * (the flag record), `makeConfig` (flag values to configuration), `validate`
 * (configuration errors as CLI errors), `serve` (run a configured server) and
 * `runMain` (the signal-aware process runner). To add flags (a metrics port, a
 * log format, a config file...), spread `flags(defaults)` into your own
 * `Command.make` record and call `makeConfig` and `serve` from its handler.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { ManagerConfig, type PoolError, PoolManager } from "@pool-manager/core"
import { Cause, Duration, Effect, Exit, Layer, Option, References, Runtime, Schema } from "effect"
import { CliError, Command, Flag, GlobalFlag } from "effect/cli"
import { NetAddress } from "effect/net"
import type { ListenError } from "./NodeError.ts"
import * as NodeTcpServer from "./NodeTcpServer.ts"

/**
 * Defaults for the flags: any `ManagerConfig` field plus where to listen and
 * what to answer a refused client. Fields left out take the library defaults
 * (`ManagerConfig.defaults`, 127.0.0.1:6263, `ERROR_SERVER_BUSY`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Defaults extends ManagerConfig.Input {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  readonly busyReply?: string | undefined
}

/**
 * The parsed flags. A flag not given is `None`: `makeConfig` applies the
 * defaults, so it can tell a default from a choice.
 *
 * @category models
 * @since 0.1.0
 */
export interface Settings {
  readonly host: Option.Option<string>
  readonly port: Option.Option<number>
  readonly path: Option.Option<string>
  readonly minWorkers: Option.Option<number>
  readonly maxWorkers: Option.Option<number>
  readonly bufferSize: Option.Option<number>
  readonly clientsDeadline: Option.Option<Duration.Duration>
  readonly idleWorkerTimeout: Option.Option<Duration.Duration>
  readonly maxMessageBytes: Option.Option<number>
  readonly drainTimeout: Option.Option<Duration.Duration>
  readonly busyReply: Option.Option<string>
  readonly debug: Option.Option<boolean>
}

/**
 * A validated server configuration: the pool's and the listener's.
 *
 * @category models
 * @since 0.1.0
 */
export interface ServerConfig {
  readonly manager: ManagerConfig.ManagerConfig
  readonly server: NodeTcpServer.Options
}

// Milliseconds per unit, with the spellings people (and Duration's own strings) use.
const units: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(ns|nanos?)$/, 1e-6],
  [/^(us|µs|micros?)$/, 1e-3],
  [/^(|ms|millis?)$/, 1],
  [/^(s|secs?|seconds?)$/, 1000],
  [/^(m|mins?|minutes?)$/, 60_000],
  [/^(h|hours?)$/, 3_600_000],
  [/^(d|days?)$/, 86_400_000],
  [/^(w|weeks?)$/, 604_800_000]
]

/**
 * Parses a duration as people type it: `3s`, `500ms`, `500 millis`,
 * `2 seconds`, `1.5m`, a bare number of milliseconds, or `infinity`.
 * Negative and malformed values give `None`.
 *
 * @category parsing
 * @since 0.1.0
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const input = text.trim().toLowerCase()
  if (input === "infinity") return Option.some(Duration.infinity)
  const match = /^(\d+(?:\.\d+)?)\s*([a-zµ]*)$/.exec(input)
  const unit = match === null ? undefined : units.find(([pattern]) => pattern.test(match[2]!))
  return unit === undefined ? Option.none() : Option.some(Duration.millis(Number(match![1]) * unit[1]))
}

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "expected a whole number >= 0" }))
const Size = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "expected a whole number >= 1" }))
const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }, { message: "expected a port 0-65535" }))
const Host = Schema.String.check(Schema.isNonEmpty({ message: "expected a host name or address" }))

const showDuration = (duration: Duration.Duration): string =>
  Duration.isFinite(duration) ? Duration.format(duration) : "infinity"

const described = <A>(flag: Flag.Flag<A>, description: string, fallback: unknown): Flag.Flag<Option.Option<A>> =>
  flag.pipe(Flag.withDescription(`${description} (default: ${String(fallback)})`), Flag.optional)

const durationFlag = (name: string, description: string, fallback: Duration.Duration) =>
  described(
    Flag.String(name).pipe(
      Flag.filterMap(parseDuration, () => "a duration >= 0 such as 3s, 500ms, 500 millis or 2 seconds"),
      Flag.withMetavar("duration")
    ),
    description,
    showDuration(fallback)
  )

const textFlag = (name: string, metavar: string, description: string, fallback: string) =>
  described(Flag.String(name).pipe(Flag.withMetavar(metavar)), description, fallback)

const countFlag = (name: string, schema: typeof Count, description: string, fallback: number) =>
  described(Flag.Int(name).pipe(Flag.withSchema(schema)), description, fallback)

const resolve = (defaults: Defaults) => {
  const { host, port, path, busyReply, ...input } = defaults
  return Effect.map(ManagerConfig.make(input), (manager) => ({
    manager,
    host: host ?? "127.0.0.1",
    port: port ?? 6263,
    path,
    busyReply: busyReply ?? "ERROR_SERVER_BUSY"
  }))
}

/**
 * The server's flags, each optional, with its default from `defaults` shown
 * in `--help`. Throws the `ConfigError` if `defaults` themselves are invalid
 * (a programming error, caught the first time the program runs).
 *
 * @category flags
 * @since 0.1.0
 */
export const flags = (defaults: Defaults = {}): { readonly [K in keyof Settings]: Flag.Flag<Settings[K]> } => {
  const base = Effect.runSync(resolve(defaults))
  const m = base.manager
  return {
    host: described(Flag.String("host").pipe(Flag.withSchema(Host)), "Interface to listen on", base.host),
    port: described(Flag.Int("port").pipe(Flag.withSchema(Port)), "TCP port; 0 picks a free one", base.port),
    path: textFlag("path", "file", "Unix socket to listen on instead of host and port", base.path ?? "none"),
    minWorkers: countFlag("min-workers", Count, "Workers kept alive even when idle", m.minWorkersCount),
    maxWorkers: countFlag("max-workers", Count, "Most connections served at once; 0 = unlimited", m.maxWorkersCount),
    bufferSize: countFlag("buffer-size", Count, "Read buffer size in bytes; 0 = 5120", m.bufferSize),
    clientsDeadline: durationFlag("clients-deadline", "Close a connection silent this long; 0 = 3s", m.clientsDeadline),
    idleWorkerTimeout: durationFlag("idle-worker-timeout", "Retire extra workers idle this long", m.idleWorkerTimeout),
    maxMessageBytes: countFlag("max-message-bytes", Size, "Largest message accepted", m.maxMessageBytes),
    drainTimeout: durationFlag("drain-timeout", "On SIGINT/SIGTERM, wait this long for busy workers", m.drainTimeout),
    busyReply: textFlag("busy-reply", "text", "Reply to a client refused while all workers are busy", base.busyReply),
    debug: described(Flag.Boolean("debug"), "Log the pool's events and show Debug logs (off: --no-debug)", m.debug)
  }
}

/**
 * The `ManagerConfig` fields set by the flags, with each field's flag name.
 *
 * @category flags
 * @since 0.1.0
 */
export const flagNames: Readonly<Partial<Record<keyof ManagerConfig.ManagerConfig, string>>> = {
  minWorkersCount: "min-workers",
  maxWorkersCount: "max-workers",
  bufferSize: "buffer-size",
  clientsDeadline: "clients-deadline",
  idleWorkerTimeout: "idle-worker-timeout",
  maxMessageBytes: "max-message-bytes",
  drainTimeout: "drain-timeout",
  debug: "debug"
}

/**
 * Applies the flags given over `defaults` and validates the result with
 * `ManagerConfig.make` (e.g. `--min-workers` must not exceed a non-zero
 * `--max-workers`). A flag given wins over a default it contradicts: with
 * defaults of 5 to 10 workers, `--max-workers 3` lowers the minimum to 3 and
 * `--min-workers 20` raises the maximum to 20; only two flags that contradict
 * each other are an error.
 *
 * @category config
 * @since 0.1.0
 */
export const makeConfig = (
  settings: Settings,
  defaults: Defaults = {}
): Effect.Effect<ServerConfig, PoolError.ConfigError> =>
  Effect.gen(function* () {
    const base = yield* resolve(defaults)
    let min = Option.getOrElse(settings.minWorkers, () => base.manager.minWorkersCount)
    let max = Option.getOrElse(settings.maxWorkers, () => base.manager.maxWorkersCount)
    if (max > 0 && min > max) {
      if (Option.isNone(settings.minWorkers)) min = max
      else if (Option.isNone(settings.maxWorkers)) max = min
    }
    // Only the flags given: ManagerConfig.make rejects a field that is present but undefined.
    const input = Object.entries({
      debug: Option.getOrUndefined(settings.debug),
      bufferSize: Option.getOrUndefined(settings.bufferSize),
      minWorkersCount: min,
      maxWorkersCount: max,
      clientsDeadline: Option.getOrUndefined(settings.clientsDeadline),
      idleWorkerTimeout: Option.getOrUndefined(settings.idleWorkerTimeout),
      maxMessageBytes: Option.getOrUndefined(settings.maxMessageBytes),
      drainTimeout: Option.getOrUndefined(settings.drainTimeout)
    } satisfies ManagerConfig.Input).filter(([, value]) => value !== undefined)
    const manager = yield* ManagerConfig.make(Object.fromEntries(input) as ManagerConfig.Input, base.manager)
    const path = Option.getOrElse(settings.path, () => base.path)
    return {
      manager,
      server: {
        host: Option.getOrElse(settings.host, () => base.host),
        port: Option.getOrElse(settings.port, () => base.port),
        ...(path === undefined ? {} : { path }),
        busyReply: Option.getOrElse(settings.busyReply, () => base.busyReply)
      }
    }
  })

const fieldPattern = new RegExp(`\\b(${Object.keys(flagNames).join("|")})\\b`, "g")
const toFlagNames = (text: string): string =>
  text.replace(fieldPattern, (field) => `--${flagNames[field as keyof typeof flagNames]}`)

/**
 * `makeConfig` as a `Command.validate` check: a configuration error becomes a
 * `CliError.ValidationError` naming the flag, shown with the help and exiting
 * with code 1 before the server starts.
 *
 * @category config
 * @since 0.1.0
 */
export const validate =
  (defaults: Defaults = {}) =>
  (settings: Settings): Effect.Effect<void, CliError.CliError> =>
    makeConfig(settings, defaults).pipe(
      Effect.asVoid,
      Effect.mapError(
        (error) =>
          new CliError.ValidationError({
            message: error.issues
              .map((issue) => {
                const flag = flagNames[issue.field as keyof typeof flagNames]
                const name = flag === undefined ? issue.field : `flag --${flag} (${issue.field})`
                return `Invalid value for ${name}: ${issue.value}. ${toFlagNames(issue.message)}`
              })
              .join("\n")
          })
      )
    )

/**
 * The line logged once listening: the bound address (with the real port
 * when 0 was asked for) and the effective configuration as `flag=value`
 * pairs, e.g. `pool-manager listening on 127.0.0.1:6263 min-workers=0 ...`.
 *
 * @category config
 * @since 0.1.0
 */
export const listeningLine = (
  name: string,
  address: NetAddress.SocketAddress,
  config: ManagerConfig.ManagerConfig
): string => {
  const where = NetAddress.isInetAddress(address) ? String(address) : `unix:${String(address)}`
  const pairs = Object.entries(flagNames).map(([field, flag]) => {
    const value = config[field as keyof ManagerConfig.ManagerConfig]
    return `${flag}=${Duration.isDuration(value) ? showDuration(value) : String(value)}`
  })
  return [`${name} listening on ${where}`, ...pairs].join(" ")
}

/**
 * Runs a configured server until interrupted: starts the pool, listens, logs
 * `listeningLine`, and on interruption stops accepting, then drains the pool
 * (the layers are released in that order).
 *
 * @category running
 * @since 0.1.0
 */
export const serve = <E, R>(
  config: ServerConfig,
  callback: PoolManager.Callback<E, R>,
  options?: { readonly name?: string | undefined }
): Effect.Effect<never, ListenError, R> =>
  Effect.gen(function* () {
    const server = yield* NodeTcpServer.NodeTcpServer
    yield* Effect.log(listeningLine(options?.name ?? "pool-manager", server.address, config.manager))
    return yield* Effect.never
  }).pipe(
    Effect.provide(
      NodeTcpServer.layer(config.server).pipe(
        // The configuration was validated already, so a ConfigError here is a bug.
        Layer.provide(Layer.orDie(PoolManager.layer(config.manager, callback)))
      )
    )
  )

/**
 * Options for `command` and `run`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<E, R> {
  /** The command's name, used in `--help` and in the log line (default `pool-manager`). */
  readonly name?: string | undefined
  /** What `--help` says the command does. */
  readonly description?: string | undefined
  /** The callback run for every message. */
  readonly callback: PoolManager.Callback<E, R>
  /** Defaults of the flags. */
  readonly defaults?: Defaults | undefined
}

/**
 * The server as a command. `--debug` also lowers the minimum log level to
 * Debug unless `--log-level` is given; a listen failure is reported as a user
 * error (exit code 1).
 *
 * @category commands
 * @since 0.1.0
 */
export const command = <E, R>(options: Options<E, R>) => {
  const name = options.name ?? "pool-manager"
  return Command.make(name, flags(options.defaults), (settings: Settings) =>
    Effect.gen(function* () {
      // Already checked by `validate`, which runs before the handler.
      const config = yield* Effect.orDie(makeConfig(settings, options.defaults))
      const explicitLevel = yield* GlobalFlag.LogLevel
      const program = serve(config, options.callback, { name }).pipe(
        Effect.catchTag("ListenError", (error) =>
          Effect.fail(new CliError.UserError({ cause: error, userMessage: error.message }))
        )
      )
      return yield* config.manager.debug && Option.isNone(explicitLevel)
        ? Effect.provideService(program, References.MinimumLogLevel, "Debug")
        : program
    })
  ).pipe(
    Command.validate(validate(options.defaults)),
    Command.withDescription(options.description ?? "A TCP server handing each message to a pool of workers.")
  )
}

/**
 * `NodeRuntime.runMain`, except that a program interrupted by SIGINT or
 * SIGTERM (and by nothing else) exits with code 0 instead of 130: for a
 * server, being told to stop and stopping gracefully is a success.
 *
 * @category running
 * @since 0.1.0
 */
export const runMain = <A, E>(effect: Effect.Effect<A, E>): void => {
  let signalled = false
  const onSignal = () => {
    signalled = true
  }
  // Registered before runMain's listeners: the flag is set before the fiber is interrupted.
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  NodeRuntime.runMain(effect, {
    teardown: (exit, onExit) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      if (signalled && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      Runtime.defaultTeardown(exit, onExit)
    }
  })
}

/**
 * Runs `command(options)` as the process's main program (with `runMain`), on
 * the arguments in `process.argv` unless `args` are given.
 *
 * @category running
 * @since 0.1.0
 */
export const run = <E>(
  options: Options<E, never> & {
    readonly version?: string | undefined
    readonly args?: ReadonlyArray<string> | undefined
  }
): void => {
  const cli = command(options)
  const config = { version: options.version ?? "0.1.0" }
  const program = options.args === undefined ? Command.run(cli, config) : Command.runWith(cli, config)(options.args)
  runMain(Effect.provide(program, NodeServices.layer))
}
