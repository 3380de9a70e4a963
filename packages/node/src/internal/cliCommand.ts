/**
 * The server command behind `NodeCli`'s face: the checks of `validate`
 * between flags, and the handler of `command` (config file, TLS files, one
 * server or a cluster's primary, OTLP, logging), with the user errors they
 * stop on. What serving does is `internal/cliServe.ts`.
 */
import * as CliError from "effect/cli/CliError"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Options } from "../NodeCli.ts"
import {
  type Defaults,
  describeConfig,
  flagNames,
  makeConfig,
  type ServerConfig,
  type Settings
} from "../NodeCliConfig.ts"
import * as NodeCluster from "../NodeCluster.ts"
import * as NodeConfigFile from "../NodeConfigFile.ts"
import * as NodeLogging from "../NodeLogging.ts"
import * as NodeOtlp from "../NodeOtlp.ts"
import type * as NodeProxyProtocol from "../NodeProxyProtocol.ts"
import type { ListenError } from "../NodeTcpServer.ts"
import { logLevelFromEnv } from "./cliEnv.ts"
import { logJsonFatal, ReportedError, userError } from "./cliOutput.ts"
import { readTls, serve } from "./cliServe.ts"
import { logWithFields, settingFields } from "./logFields.ts"

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

/** What a cluster's primary is run with: the processes' stop timeout, the config file to re-read, the mode. */
const primaryOptions = (
  name: string,
  config: ServerConfig,
  path: string | undefined,
  settings: Settings,
  defaults: Defaults | undefined
): NodeCluster.PrimaryOptions => ({
  processes: config.processes ?? 1,
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
            NodeConfigFile.parse(text, path).pipe(Effect.flatMap((input) => makeConfig(settings, defaults, input)))
        },
  mode:
    config.clusterMode === "auto" || config.clusterMode === undefined
      ? config.server.path === undefined
        ? NodeCluster.defaultMode()
        : "handoff"
      : config.clusterMode
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
    const program: Effect.Effect<
      never,
      ListenError | NodeProxyProtocol.ProxyProtocolError | NodeCluster.ClusterError,
      R
    > =
      (config.processes ?? 1) > 1 && NodeCluster.workerNumber() === undefined
        ? NodeCluster.runPrimary(primaryOptions(name, config, path, settings, options.defaults)).pipe(Effect.scoped)
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
