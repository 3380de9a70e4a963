/**
 * The standalone server as an `effect/cli` command: flags for where to listen,
 * for the pool's settings and for operating it (a config file re-read on
 * SIGHUP, TLS, a Prometheus metrics endpoint, text or JSON logs, several
 * processes, OTLP export of traces and metrics), validation that names the offending flag, one parsable
 * "listening" log line, and a graceful stop on SIGINT or SIGTERM that exits
 * with code 0.
 *
 * The pieces are exported separately so a bigger CLI can reuse them:
 * `validate` (configuration errors as CLI errors), `serve` (run a configured
 * server) and `runMain` (the signal-aware process runner) here, and the
 * configuration half in `NodeCliConfig`: `flags` (the flag record) and
 * `makeConfig` (defaults, config file and flags to configuration). To add
 * flags, spread `NodeCliConfig.flags(defaults)` into your own `Command.make`
 * record and call `NodeCliConfig.makeConfig` and `serve` from its handler.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs/promises"
import * as Tls from "node:tls"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import type * as PoolError from "@pool-manager/core/PoolError"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as Cause from "effect/Cause"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import * as Runtime from "effect/Runtime"
import * as NodeAgentCheck from "./NodeAgentCheck.ts"
import {
  type Defaults,
  describeConfig,
  flagNames,
  flags,
  listeningLine,
  makeConfig,
  type ServerConfig,
  type Settings
} from "./NodeCliConfig.ts"
import * as NodeCluster from "./NodeCluster.ts"
import * as NodeConfigFile from "./NodeConfigFile.ts"
import * as NodeLogging from "./NodeLogging.ts"
import * as NodeMetricsServer from "./NodeMetricsServer.ts"
import * as NodeOtlp from "./NodeOtlp.ts"
import type * as NodeProxyProtocol from "./NodeProxyProtocol.ts"
import * as NodeStatusPage from "./NodeStatusPage.ts"
import type { ListenError } from "./NodeTcpServer.ts"
import * as NodeTcpServer from "./NodeTcpServer.ts"

const fieldPattern = new RegExp(`\\b(${Object.keys(flagNames).join("|")})\\b`, "g")
const toFlagNames = (text: string): string =>
  text.replace(fieldPattern, (field) => `--${flagNames[field as keyof typeof flagNames]}`)

/**
 * Checks the flags as a `Command.validate` step: a configuration error
 * becomes a `CliError.ValidationError` naming the flag, shown with the help
 * and exiting with code 1 before the server starts. `--tls-key` and
 * `--tls-cert` must be given together. (The config file is checked when the
 * command runs, with an error naming the file.)
 *
 * @category config
 * @since 0.1.0
 */
export const validate =
  (defaults: Defaults = {}) =>
  (settings: Settings): Effect.Effect<void, CliError.CliError> =>
    Effect.gen(function* () {
      if (Option.isSome(settings.tlsKey) !== Option.isSome(settings.tlsCert)) {
        const missing = Option.isSome(settings.tlsKey) ? "--tls-cert" : "--tls-key"
        return yield* new CliError.ValidationError({
          message: `--tls-key and --tls-cert go together: ${missing} is missing (give both to serve TLS, or neither)`
        })
      }
      const processes = Option.getOrElse(settings.processes, () => defaults.processes ?? 1)
      if (Option.getOrElse(settings.agentPort, () => defaults.agentPort) !== undefined && processes > 1) {
        return yield* new CliError.ValidationError({
          message: "--agent-port needs --processes 1: each process would report only its own share of the workers"
        })
      }
      const clusterMode = Option.getOrElse(settings.clusterMode, () => defaults.clusterMode)
      if (clusterMode === "reuseport" && Option.getOrElse(settings.path, () => defaults.path) !== undefined) {
        return yield* new CliError.ValidationError({
          message: "--cluster-mode reuseport needs a TCP port: processes share a unix socket (--path) by hand-off"
        })
      }
      yield* makeConfig(settings, defaults).pipe(
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
    })

/**
 * Options for `serve`.
 *
 * @category models
 * @since 0.1.0
 */
export interface ServeOptions {
  /** The program's name, used in log lines (default `pool-manager`). */
  readonly name?: string | undefined
  /**
   * The configuration to apply when SIGHUP re-reads `config.configFile`, from
   * the file's fields. The default applies them over the running
   * configuration; `command` applies defaults < file < the flags given.
   */
  readonly reconfigure?:
    | ((file: ManagerConfig.Input) => Effect.Effect<ManagerConfig.ManagerConfig, PoolError.ConfigError>)
    | undefined
  /** Called with each configuration a reload applied. */
  readonly onReload?: ((config: ManagerConfig.ManagerConfig) => void) | undefined
}

const health = (
  manager: PoolManager.PoolManager["Service"] | undefined,
  server: NodeTcpServer.NodeTcpServer["Service"] | undefined
): Effect.Effect<NodeMetricsServer.Health> =>
  manager === undefined || server === undefined
    ? Effect.succeed({ healthy: false, detail: "starting" })
    : Effect.map(Effect.all([manager.stats, server.draining]), ([{ running }, draining]) =>
        running && !draining ? { healthy: true, detail: "ok" } : { healthy: false, detail: "stopping" }
      )

// Before the server listens, and once it stopped, there is nothing to send clients to.
const agentState = (
  manager: PoolManager.PoolManager["Service"] | undefined,
  server: NodeTcpServer.NodeTcpServer["Service"] | undefined
): Effect.Effect<NodeAgentCheck.State> =>
  manager === undefined || server === undefined
    ? Effect.succeed({ draining: true, busy: 0, max: 0 })
    : Effect.map(Effect.all([manager.stats, manager.config, server.draining]), ([stats, config, draining]) => ({
        draining: draining || !stats.running,
        busy: stats.busy,
        max: config.maxWorkersCount
      }))

// Released after the listener and before the pool: with an OTLP exporter
// (NodeOtlp), drains the pool, then posts what the exporters hold while the
// pool's metrics are still registered (its release removes them), so the last
// report has the final counts. The pool's own release then finds it stopped.
const flushAfterDrain = Layer.effectDiscard(
  Effect.gen(function* () {
    const flusher = yield* Effect.serviceOption(OtlpExporter.Flusher)
    if (Option.isNone(flusher)) return
    const pool = yield* PoolManager.PoolManager
    yield* Effect.addFinalizer(() =>
      pool.stop.pipe(Effect.andThen(Effect.timeoutOption(flusher.value.flush, "5 seconds")))
    )
  })
)

/**
 * Runs a configured server until interrupted: starts the pool, listens, logs
 * `listeningLine`, serves `/metrics` and `/healthz` if `config.metrics` is
 * set, and re-reads `config.configFile` on SIGHUP. On interruption `/healthz`
 * answers 503 at once; the listener keeps accepting for
 * `config.server.shutdownDelay` (the lame-duck period, ended early by another
 * signal), then stops accepting, then the pool drains, then the metrics
 * endpoint closes. With `config.agent`, an HAProxy agent-check endpoint
 * reports the free workers as a weight, and `drain` from the signal on. In a
 * worker of `NodeCluster` the metrics go to the primary instead, and log
 * lines carry `process` and `pid`. Under `NodeOtlp.layer`, the pool traces
 * its connections, and once it has drained what the exporters hold is posted,
 * the pool's final metrics with it.
 *
 * @category running
 * @since 0.1.0
 */
export const serve = <E, R>(
  config: ServerConfig,
  callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback,
  options?: ServeOptions
): Effect.Effect<never, ListenError | NodeProxyProtocol.ProxyProtocolError, R> => {
  const name = options?.name ?? "pool-manager"
  const worker = NodeCluster.workerNumber()
  return Effect.gen(function* () {
    let manager: PoolManager.PoolManager["Service"] | undefined
    let listener: NodeTcpServer.NodeTcpServer["Service"] | undefined
    let metricsLine: string | undefined
    let agentLine: string | undefined
    // Started before the pool, so they are closed after it has drained.
    if (worker !== undefined) {
      yield* NodeCluster.answerScrapes(
        Effect.suspend(() => Effect.map(health(manager, listener), ({ healthy }) => healthy))
      )
    } else if (config.metrics !== undefined) {
      const metrics = yield* NodeMetricsServer.make({
        ...config.metrics,
        health: Effect.suspend(() => health(manager, listener)),
        status: Effect.suspend(() => (manager === undefined ? Effect.undefined : NodeStatusPage.snapshot(manager)))
      })
      const url = NodeMetricsServer.url(metrics.address)
      metricsLine = `${name} metrics at ${url}/metrics and /healthz, status page at ${url}/`
    }
    if (config.agent !== undefined) {
      const agent = yield* NodeAgentCheck.make({
        ...config.agent,
        state: Effect.suspend(() => agentState(manager, listener))
      })
      agentLine = `${name} agent-check at ${String(agent.address)}`
    }
    return yield* Effect.gen(function* () {
      const pool = yield* PoolManager.PoolManager
      manager = pool
      const server = yield* NodeTcpServer.NodeTcpServer
      listener = server
      const file = config.configFile
      if (file !== undefined) {
        const reconfigure =
          options?.reconfigure ??
          ((input: ManagerConfig.Input) => Effect.flatMap(pool.config, (current) => ManagerConfig.make(input, current)))
        yield* NodeConfigFile.reloadOnSighup(file, (input) =>
          reconfigure(input).pipe(
            // setConfig merges over the running config: the whole config is passed, so nothing stale survives.
            Effect.flatMap((next) => pool.setConfig(next)),
            Effect.tap((applied) =>
              Effect.sync(() => options?.onReload?.(applied)).pipe(
                Effect.andThen(Effect.log(`${name} config reloaded from ${file}: ${describeConfig(applied)}`))
              )
            )
          )
        )
      }
      const tls = config.server.tls !== undefined
      yield* Effect.log(listeningLine(name, server.address, config.manager, { tls }))
      if (metricsLine !== undefined) yield* Effect.log(metricsLine)
      if (agentLine !== undefined) yield* Effect.log(agentLine)
      return yield* Effect.never
    }).pipe(
      Effect.scoped,
      Effect.provide(
        NodeTcpServer.layer(config.server).pipe(
          Layer.provideMerge(flushAfterDrain),
          // The configuration was validated already, so a ConfigError here is a bug.
          Layer.provideMerge(Layer.orDie(PoolManager.layer(config.manager, callback)))
        )
      )
    )
  }).pipe(
    Effect.scoped,
    worker === undefined ? (self) => self : Effect.annotateLogs({ process: worker, pid: process.pid })
  )
}

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
  /** The callback run for every message (an Effect callback, or a `PoolManager.syncCallback`). */
  readonly callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback
  /** Defaults of the flags. */
  readonly defaults?: Defaults | undefined
}

const userError = (error: { readonly message: string }) =>
  new CliError.UserError({ cause: error, userMessage: error.message })

// Read here rather than by the TLS server, so a missing file or a key that
// does not match its certificate stops the program with one clear line.
const readTls = (files: { readonly key: string; readonly cert: string }) =>
  Effect.tryPromise({
    try: async () => {
      const key = await Fs.readFile(files.key)
      const cert = await Fs.readFile(files.cert)
      Tls.createSecureContext({ key, cert })
      return { key, cert }
    },
    catch: (cause) =>
      userError({
        message: `cannot use --tls-key ${files.key} and --tls-cert ${files.cert}: ${(cause as Error).message}`
      })
  })

/**
 * The server as a command. Without `--log-level`, the minimum level is Debug
 * while the pool's `debug` is on (also after a reload turned it on) and Info
 * otherwise. A config file or TLS file that cannot be used, or a listen
 * failure, is reported as a user error (exit code 1). With `--processes N`
 * above 1 the process becomes the primary of `NodeCluster`, in the mode of
 * `--cluster-mode` (`auto`: `reuseport` on Linux, `handoff` elsewhere and for
 * `--path`). With `--otlp-endpoint`, the pool runs under `NodeOtlp.layer`, so
 * it traces its connections, and what is left to export is posted after the
 * drain.
 *
 * @category commands
 * @since 0.1.0
 */
export const command = <E, R>(options: Options<E, R>) => {
  const name = options.name ?? "pool-manager"
  return Command.make(name, flags(options.defaults), (settings: Settings) =>
    Effect.gen(function* () {
      const explicitLevel = yield* GlobalFlag.LogLevel
      const path = Option.getOrUndefined(settings.config)
      const file = path === undefined ? {} : yield* Effect.mapError(NodeConfigFile.read(path), userError)
      const config = yield* Effect.mapError(makeConfig(settings, options.defaults, file), userError)
      const tls = config.tlsFiles === undefined ? undefined : yield* readTls(config.tlsFiles)
      let debug = config.manager.debug
      const processes = config.processes ?? 1
      const program: Effect.Effect<
        never,
        ListenError | NodeProxyProtocol.ProxyProtocolError | NodeCluster.ClusterError,
        R
      > =
        processes > 1 && NodeCluster.workerNumber() === undefined
          ? NodeCluster.runPrimary({
              processes,
              name,
              metrics: config.metrics,
              stopTimeout: Duration.sum(
                Duration.sum(config.manager.drainTimeout, Duration.fromInputUnsafe(config.server.shutdownDelay ?? 0)),
                Duration.seconds(10)
              ),
              forwardSighup: path !== undefined,
              mode:
                config.clusterMode === "auto" || config.clusterMode === undefined
                  ? config.server.path === undefined
                    ? NodeCluster.defaultMode()
                    : "handoff"
                  : config.clusterMode
            }).pipe(Effect.scoped)
          : serve({ ...config, server: { ...config.server, tls } }, options.callback, {
              name,
              reconfigure: (input) =>
                Effect.map(makeConfig(settings, options.defaults, input), (applied) => applied.manager),
              onReload: (applied) => {
                debug = applied.debug
              }
            })
      // Released after the server stopped: the last spans (the drained
      // connections') are exported before the process ends.
      const otlp = config.otlp
      const exported =
        otlp === undefined
          ? program
          : Effect.provide(program, NodeOtlp.layer({ endpoint: otlp.endpoint, serviceName: otlp.serviceName ?? name }))
      return yield* exported.pipe(
        Effect.catchTags({
          ListenError: (error) => Effect.fail(userError(error)),
          ProxyProtocolError: (error) => Effect.fail(userError(error)),
          ClusterError: (error) => Effect.fail(userError(error))
        }),
        NodeLogging.provide({
          format: config.logFormat,
          // Debug must pass the fibers' own check whenever a reload could turn it on.
          floor: Option.getOrElse(explicitLevel, () => (debug || path !== undefined ? "Debug" : "Info")),
          minimumLevel: () => Option.getOrElse(explicitLevel, () => (debug ? "Debug" : "Info"))
        })
      )
    })
  ).pipe(
    Command.validate(validate(options.defaults)),
    Command.withDescription(options.description ?? "A TCP server handing each message to a pool of workers.")
  )
}

/**
 * `NodeRuntime.runMain`, except that a program interrupted by SIGINT or
 * SIGTERM (and by nothing else) exits with code 0 instead of 130: for a
 * server, being told to stop and stopping gracefully is a success. A program
 * that set `process.exitCode` during its stop (as `NodeCluster` does when a
 * worker failed) exits with that code.
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
      if (signalled && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) {
        return onExit(Number(process.exitCode ?? 0) || 0)
      }
      Runtime.defaultTeardown(exit, onExit)
    }
  })
}

/**
 * Runs `command(options)` as the process's main program (with `runMain`), on
 * the arguments in `process.argv` unless `args` are given. (`--processes`
 * forks this script again with `process.argv`, so it needs a script file.)
 *
 * @example
 * ```ts
 * import { NodeCli } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * // echo-server.ts: `node echo-server.ts --port 7000 --max-workers 50`;
 * // `--help` lists every flag, SIGINT/SIGTERM drain and exit with code 0.
 * NodeCli.run({
 *   name: "echo-server",
 *   description: "Answers every message with itself.",
 *   callback: (conn, body) => Effect.ignore(conn.write(body)),
 *   defaults: { port: 7000, maxWorkersCount: 20, clientsDeadline: "10 seconds" }
 * })
 * ```
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
