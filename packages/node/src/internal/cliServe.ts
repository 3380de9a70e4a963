/**
 * What the server command does, behind `NodeCli`'s face: the checks of
 * `validate`, the body of `serve` (the pool, the listener and the endpoints
 * that report on them, stopped in that order) and the handler of `command`
 * (config file, TLS files, one server or a cluster primary, OTLP, logging),
 * with the user errors they stop on.
 */
import * as Fs from "node:fs/promises"
import * as Tls from "node:tls"
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as CliError from "effect/cli/CliError"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import * as NodeAgentCheck from "../NodeAgentCheck.ts"
import type { Options, ServeOptions } from "../NodeCli.ts"
import {
  type Defaults,
  describeConfig,
  flagNames,
  listeningLine,
  makeConfig,
  type ServerConfig,
  type Settings
} from "../NodeCliConfig.ts"
import * as NodeCluster from "../NodeCluster.ts"
import * as NodeConfigFile from "../NodeConfigFile.ts"
import * as NodeLogging from "../NodeLogging.ts"
import * as NodeMetricsServer from "../NodeMetricsServer.ts"
import * as NodeOtlp from "../NodeOtlp.ts"
import type * as NodeProxyProtocol from "../NodeProxyProtocol.ts"
import * as NodeStatusPage from "../NodeStatusPage.ts"
import type { ListenError } from "../NodeTcpServer.ts"
import * as NodeTcpServer from "../NodeTcpServer.ts"
import { logLevelFromEnv } from "./cliEnv.ts"
import { logJsonFatal, ReportedError } from "./cliOutput.ts"
import * as ClusterStatus from "./clusterStatus.ts"
import { addressFields, logWithFields, settingFields, where } from "./logFields.ts"
import * as ProcessMetrics from "./processMetrics.ts"
import * as Signals from "./signals.ts"

const fieldPattern = new RegExp(`\\b(${Object.keys(flagNames).join("|")})\\b`, "g")
const toFlagNames = (text: string): string =>
  text.replace(fieldPattern, (field) => `--${flagNames[field as keyof typeof flagNames]}`)

/** `NodeCli.validate`: the rules between flags, then the configuration's own checks, each naming its flag. */
export const validate = (defaults: Defaults, settings: Settings): Effect.Effect<void, CliError.CliError> =>
  Effect.gen(function* () {
    if (Option.isSome(settings.tlsKey) !== Option.isSome(settings.tlsCert)) {
      const missing = Option.isSome(settings.tlsKey) ? "--tls-cert" : "--tls-key"
      return yield* new CliError.ValidationError({
        message: `--tls-key and --tls-cert go together: ${missing} is missing (give both to serve TLS, or neither)`
      })
    }
    const clientAuth = Option.getOrElse(settings.tlsClientAuth, () => defaults.tlsClientAuth ?? "none")
    if ((clientAuth !== "none" || Option.isSome(settings.tlsCa)) && Option.isNone(settings.tlsKey)) {
      return yield* new CliError.ValidationError({
        message: "--tls-client-auth and --tls-ca need TLS: give --tls-key and --tls-cert too"
      })
    }
    if (clientAuth !== "none" && Option.isNone(settings.tlsCa)) {
      return yield* new CliError.ValidationError({
        message: `--tls-client-auth ${clientAuth} needs --tls-ca: the CA certificates that sign your clients' certificates`
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

// On SIGHUP: the TLS files again, for new handshakes; a set that does not load keeps the running one.
const reloadTlsOnSighup = (files: TlsFiles, server: NodeTcpServer.NodeTcpServer["Service"]) =>
  Signals.onSighup(
    readTls(files).pipe(
      Effect.flatMap((tls) => server.reloadTls(tls)),
      Effect.andThen(Effect.logInfo(`SIGHUP: TLS key and certificate reloaded from ${files.key} and ${files.cert}`)),
      Effect.catch((error: { readonly message: string }) =>
        Effect.logError(`TLS reload failed, keeping the running key and certificate: ${error.message}`)
      )
    )
  )

const stoppingLine = (
  name: string,
  config: ServerConfig,
  pool: PoolManager.PoolManager["Service"],
  stop: { at: number; busy: number; cut: number }
) =>
  Effect.gen(function* () {
    const received = Signals.stopSignal()
    const stats = yield* pool.stats
    stop.at = Date.now()
    stop.busy = stats.busy
    stop.cut = stats.interruptedByDrain
    const drain = Duration.format(config.manager.drainTimeout)
    const delay = Duration.fromInputUnsafe(config.server.shutdownDelay ?? 0)
    const lameDuck = Duration.isZero(delay) ? "" : ` after ${Duration.format(delay)} still accepting`
    yield* Effect.log(
      `${name} stopping${received === undefined ? "" : ` on ${received.signal}`}: ` +
        `draining ${stats.busy} connections for up to ${drain}${lameDuck}`
    ).pipe(
      Effect.annotateLogs({
        signal: received?.signal ?? "none",
        drainTimeout: drain,
        shutdownDelay: Duration.format(delay),
        connections: stats.busy
      })
    )
  })

const stoppedLine = (
  name: string,
  stop: { at: number; busy: number; cut: number },
  manager: PoolManager.PoolManager["Service"] | undefined
) =>
  Effect.gen(function* () {
    if (stop.at === 0 || manager === undefined) return
    const millis = Date.now() - stop.at
    const cut = (yield* manager.stats).interruptedByDrain - stop.cut
    const took = Duration.format(Duration.millis(millis))
    yield* Effect.log(
      `${name} stopped: ${stop.busy - cut} connections drained${cut > 0 ? `, ${cut} cut at the drain timeout` : ""} in ${took}`
    ).pipe(Effect.annotateLogs({ drained: stop.busy - cut, cut, stopMillis: millis }))
  })

/** `NodeCli.serve`: the endpoints reporting on the pool start before it, so they answer until it has drained. */
export const serve = <E, R>(
  config: ServerConfig,
  callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback | PoolManager.Stateful<any, E, R>,
  options?: ServeOptions
): Effect.Effect<never, ListenError | NodeProxyProtocol.ProxyProtocolError, R> => {
  const name = options?.name ?? "pool-manager"
  const worker = NodeCluster.workerNumber()
  return Effect.gen(function* () {
    let manager: PoolManager.PoolManager["Service"] | undefined
    let listener: NodeTcpServer.NodeTcpServer["Service"] | undefined
    let metricsLine: string | undefined
    let agentLine: string | undefined
    // Added first, so it runs last: once the pool drained and the endpoints closed.
    const stop = { at: 0, busy: 0, cut: 0 }
    yield* Effect.addFinalizer(() => stoppedLine(name, stop, manager))
    const reloads = yield* ProcessMetrics.register
    // Started before the pool, so they are closed after it has drained.
    if (worker !== undefined) {
      yield* NodeCluster.answerScrapes(
        Effect.suspend(() => Effect.map(health(manager, listener), ({ healthy }) => healthy))
      )
      yield* ClusterStatus.answer(
        Effect.suspend(() => (manager === undefined ? Effect.undefined : NodeStatusPage.snapshot(manager)))
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
        yield* NodeConfigFile.reloadOnSighup(
          file,
          (input) =>
            reconfigure(input).pipe(
              // setConfig merges over the running config: the whole config is passed, so nothing stale survives.
              Effect.flatMap((next) => pool.setConfig(next)),
              Effect.tap((applied) =>
                Effect.sync(() => options?.onReload?.(applied)).pipe(
                  Effect.andThen(
                    logWithFields(
                      config.logFormat === "json",
                      `${name} config reloaded from ${file}`,
                      { configFile: file, ...settingFields(applied, flagNames) },
                      `${name} config reloaded from ${file}: ${describeConfig(applied)}`
                    )
                  )
                )
              )
            ),
          reloads.record
        )
      }
      if (config.tlsFiles !== undefined) yield* reloadTlsOnSighup(config.tlsFiles, server)
      if (file === undefined && config.tlsFiles === undefined) {
        yield* Signals.onSighup(Effect.logInfo(`SIGHUP: ${name} has nothing to reload (no --config, no TLS files)`))
      }
      // Added last, so it runs first: the moment the stop begins.
      yield* Effect.addFinalizer(() => stoppingLine(name, config, pool, stop))
      const tls = config.server.tls !== undefined
      // JSON lines carry the address and settings as fields; the text line keeps them in its message.
      const processes = config.processes ?? 1
      yield* logWithFields(
        config.logFormat === "json",
        `${name} listening on ${where(server.address)}`,
        { ...addressFields(server.address), processes, tls, ...settingFields(config.manager, flagNames) },
        listeningLine(name, server.address, config.manager, { tls, processes })
      )
      if (metricsLine !== undefined) yield* Effect.log(metricsLine)
      if (agentLine !== undefined) yield* Effect.log(agentLine)
      return yield* Effect.never
    }).pipe(
      Effect.scoped,
      Effect.provide(
        NodeTcpServer.layer(NodeCluster.serverOptions(config.server)).pipe(
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

const userError = (error: { readonly message: string }) =>
  new CliError.UserError({ cause: error, userMessage: error.message })

type TlsFiles = NonNullable<ServerConfig["tlsFiles"]>

// Read here rather than by the TLS server, so a missing file or a key that
// does not match its certificate stops the program with one clear line (and a
// reload that hits one keeps the running pair).
const readTls = (files: TlsFiles) =>
  Effect.tryPromise({
    try: async () => {
      const key = await Fs.readFile(files.key)
      const cert = await Fs.readFile(files.cert)
      const ca = files.ca === undefined ? undefined : await Fs.readFile(files.ca)
      Tls.createSecureContext({ key, cert, ...(ca === undefined ? {} : { ca }) })
      return { key, cert, ...(ca === undefined ? {} : { ca }) }
    },
    catch: (cause) =>
      userError({
        message: `cannot use --tls-key ${files.key} and --tls-cert ${files.cert}${files.ca === undefined ? "" : ` and --tls-ca ${files.ca}`}: ${(cause as Error).message}`
      })
  })

/** Where the settings come from, for `--help`. */
export const precedence =
  "Every flag can also be set in the environment as POOL_MANAGER_<FLAG> (--max-workers 10: " +
  "POOL_MANAGER_MAX_WORKERS=10). Precedence: flag > environment > config file (--config, JSON or YAML) > default."

/**
 * The handler of `NodeCli.command`: runs the server (or a cluster's
 * primary). With JSON logs, an error that stops it is a JSON line too.
 */
export const handler = <E, R>(name: string, options: Options<E, R>, settings: Settings) =>
  Effect.catch(
    run(name, options, settings),
    (error): Effect.Effect<never, CliError.UserError | CliError.ShowHelp | ReportedError> =>
      // A usage error (a bad POOL_MANAGER_LOG_LEVEL) goes to the command's output, JSON or not.
      error._tag !== "ShowHelp" &&
      Option.getOrElse(settings.logFormat, () => options.defaults?.logFormat ?? "text") === "json"
        ? Effect.andThen(logJsonFatal(error.message), Effect.fail(new ReportedError({ message: error.message })))
        : Effect.fail(error)
  )

// `--check` and `--check-config FILE`: the settings a start would combine (flags and environment over the file,
// `--check-config`'s or else `--config`'s, if any), and the TLS files they name, without serving.
const checkConfig = <E, R>(path: string | undefined, options: Options<E, R>, settings: Settings) =>
  Effect.gen(function* () {
    const file = path === undefined ? {} : yield* Effect.mapError(NodeConfigFile.read(path), userError)
    const config = yield* Effect.mapError(makeConfig(settings, options.defaults, file), (error) =>
      userError({ message: path === undefined ? error.message : `config file ${path}: ${error.message}` })
    )
    if (config.tlsFiles !== undefined) yield* readTls(config.tlsFiles)
    const what = path === undefined ? "configuration" : `config file ${path}`
    yield* logWithFields(
      config.logFormat === "json",
      `${what} is valid`,
      { ...(path === undefined ? {} : { configFile: path }), valid: true, ...settingFields(config.manager, flagNames) },
      `${what} is valid: ${describeConfig(config.manager)}`
    ).pipe(NodeLogging.provide({ format: config.logFormat, floor: "Info", minimumLevel: () => "Info" }))
  })

const run = <E, R>(name: string, options: Options<E, R>, settings: Settings) =>
  Effect.gen(function* () {
    if (Option.isSome(settings.checkConfig)) return yield* checkConfig(settings.checkConfig.value, options, settings)
    if (Option.getOrElse(settings.check, () => false)) {
      return yield* checkConfig(Option.getOrUndefined(settings.config), options, settings)
    }
    const flagLevel = yield* GlobalFlag.LogLevel
    const explicitLevel = Option.isSome(flagLevel) ? flagLevel : yield* logLevelFromEnv(name)
    const path = Option.getOrUndefined(settings.config)
    // A cluster's process starts with the text its primary last loaded (the file may be broken since).
    const lastGood = NodeCluster.lastGoodConfig()
    const file =
      path === undefined
        ? {}
        : yield* Effect.mapError(
            lastGood === undefined ? NodeConfigFile.read(path) : NodeConfigFile.parse(lastGood, path),
            userError
          )
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
            configFile:
              path === undefined
                ? undefined
                : {
                    path,
                    check: (text) =>
                      NodeConfigFile.parse(text, path).pipe(
                        Effect.flatMap((input) => makeConfig(settings, options.defaults, input))
                      )
                  },
            mode:
              config.clusterMode === "auto" || config.clusterMode === undefined
                ? config.server.path === undefined
                  ? NodeCluster.defaultMode()
                  : "handoff"
                : config.clusterMode
          }).pipe(Effect.scoped)
        : serve(
            { ...config, server: { ...config.server, tls: tls && { ...config.server.tls, ...tls } } },
            options.callback,
            {
              name,
              reconfigure: (input) =>
                Effect.map(makeConfig(settings, options.defaults, input), (applied) => applied.manager),
              onReload: (applied) => {
                debug = applied.debug
              }
            }
          )
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
