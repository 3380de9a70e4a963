/**
 * The configuration of the `pool-manager` command: its flags, their defaults,
 * and how defaults, a config file and flags combine into one validated
 * `ServerConfig` (defaults < file < flags). `NodeCli` re-exports all of it
 * and adds the command itself: validation as CLI errors, and running.
 *
 * @since 0.1.0
 */
import * as Framing from "@pool-manager/core/Framing"
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as PoolError from "@pool-manager/core/PoolError"
import type * as Flag from "effect/cli/Flag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Flags from "./internal/cliFlags.ts"
import { showDuration } from "./internal/logFields.ts"
import { expectedEntry } from "./internal/proxyGate.ts"
import * as ServerFlags from "./internal/serverFlags.ts"
import type * as NodeCluster from "./NodeCluster.ts"
import * as NodeProxyProtocol from "./NodeProxyProtocol.ts"
import type * as NodeTcpServer from "./NodeTcpServer.ts"

/**
 * How log lines are written: `text` (Effect's default logger) or `json` (one
 * JSON object per line).
 *
 * @category models
 * @since 0.1.0
 */
export type LogFormat = "text" | "json"

/**
 * Defaults for the flags: any `ManagerConfig` field plus where to listen,
 * what to answer a refused client, and the operational settings. Fields left
 * out take the library defaults (`ManagerConfig.defaults`, 127.0.0.1:6263,
 * `ERROR_SERVER_BUSY`, no metrics endpoint, text logs, one process, no OTLP
 * export).
 *
 * @category models
 * @since 0.1.0
 */
export type Defaults = ManagerConfig.Input & {
  readonly [K in keyof ServerFlags.Table as ServerFlags.InDefaults<K>]?: ServerFlags.DefaultOf<K> | undefined
}

/**
 * The parsed flags. A flag not given is `None`: `makeConfig` applies the
 * defaults, so it can tell a default from a choice.
 *
 * @category models
 * @since 0.1.0
 */
export type Settings = PoolSettings & {
  readonly [K in keyof ServerFlags.Table]: Option.Option<ServerFlags.SettingOf<K>>
}

/**
 * The parsed flags of the pool's settings: one per `ManagerConfig` field,
 * named as the field (`flagNames` has each one's flag).
 *
 * @category models
 * @since 0.1.0
 */
export type PoolSettings = {
  readonly [K in keyof ManagerConfig.ManagerConfig]: Option.Option<ManagerConfig.ManagerConfig[K]>
}

/**
 * A validated server configuration: the pool's, the listener's, and the
 * operational settings (all optional, so `{ manager, server }` is enough for
 * `NodeCli.serve`).
 *
 * @category models
 * @since 0.1.0
 */
export interface ServerConfig {
  readonly manager: ManagerConfig.ManagerConfig
  readonly server: NodeTcpServer.Options
  /** PEM files of `--tls-key`, `--tls-cert` (and `--tls-ca`); `NodeCli` reads them into `server.tls`, and again on SIGHUP. */
  readonly tlsFiles?: { readonly key: string; readonly cert: string; readonly ca?: string | undefined } | undefined
  /** Where to serve `/metrics` and `/healthz`; none when undefined. */
  readonly metrics?: { readonly host: string; readonly port: number } | undefined
  readonly logFormat?: LogFormat | undefined
  /** Server processes sharing the port (`node:cluster`); 1 = this process serves. */
  readonly processes?: number | undefined
  /** How they share it: `auto` (`NodeCluster.defaultMode()`; the hand-off for a unix socket), `reuseport` or `handoff`. */
  readonly clusterMode?: NodeCluster.Mode | "auto" | undefined
  /** The `--config` file, re-read on SIGHUP. */
  readonly configFile?: string | undefined
  /** Where to answer HAProxy's agent checks; none when undefined. */
  readonly agent?: { readonly host: string; readonly port: number } | undefined
  /**
   * Where to export traces and metrics over OTLP/HTTP (JSON), and the service
   * name they carry (undefined: the command's name); none when undefined.
   */
  readonly otlp?: { readonly endpoint: string; readonly serviceName?: string | undefined } | undefined
}

/**
 * Parses a duration as people type it: `3s`, `500ms`, `500 millis`,
 * `2 seconds`, `1.5m`, `0`, or `infinity`. A number without a unit (other
 * than 0) is refused, as `5` could mean seconds or milliseconds; negative
 * and malformed values give `None` too. Used for the flags, the environment
 * and the string durations of a config file (where a JSON or YAML number is
 * a number of milliseconds).
 *
 * @category parsing
 * @since 0.1.0
 */
export const parseDuration: (text: string) => Option.Option<Duration.Duration> = Flags.parseDuration

// The defaults with the library's filled in: the pool's validated, the server's from its table.
const resolve = (defaults: Defaults) =>
  Effect.flatMap(
    ManagerConfig.make(
      Object.fromEntries(Object.entries(defaults).filter(([key]) => !ServerFlags.isField(key))) as ManagerConfig.Input
    ),
    (manager) => {
      // The flag and its variable parse their entries; a default is checked here, as any invalid default:
      // `validate` names it and `flags` throws it, where it used to pass `--check` and fail the start.
      const bad = defaults.trustedProxies && NodeProxyProtocol.invalidTrustedProxy(defaults.trustedProxies)
      return bad === undefined
        ? Effect.succeed({ manager, ...ServerFlags.resolveDefaults(defaults) })
        : Effect.fail(
            new PoolError.ConfigError({
              issues: [
                {
                  field: "trustedProxies",
                  value: bad,
                  message: `expected ${expectedEntry}`
                }
              ]
            })
          )
    }
  )

/**
 * The server's flags, each optional, with its default from `defaults` shown
 * in `--help`. Each one not given is read from the environment variable
 * `POOL_MANAGER_<FLAG>` (`--max-workers`: `POOL_MANAGER_MAX_WORKERS`) through
 * the fiber's `ConfigProvider`, and parsed as the flag would be. Throws the `ConfigError` if `defaults` themselves are invalid
 * (a programming error, caught the first time the program runs).
 *
 * @example
 * ```ts
 * import { NodeServices } from "@effect/platform-node"
 * import { NodeCli, NodeCliConfig } from "@pool-manager/node"
 * import { Effect } from "effect"
 * import { Command, Flag } from "effect/cli"
 *
 * // The server's flags plus one of your own: `greet-server --port 7000 --greeting hi`
 * const defaults: NodeCliConfig.Defaults = { port: 7000, maxWorkersCount: 50 }
 * const greetServer = Command.make(
 *   "greet-server",
 *   { ...NodeCliConfig.flags(defaults), greeting: Flag.String("greeting").pipe(Flag.withDefault("hello")) },
 *   ({ greeting, ...settings }) =>
 *     Effect.gen(function* () {
 *       const config = yield* NodeCliConfig.makeConfig(settings, defaults)
 *       return yield* NodeCli.serve(config, (conn) => conn.write(greeting), { name: "greet-server" })
 *     })
 * ).pipe(Command.validate((input) => NodeCli.validate(defaults)(input)))
 *
 * NodeCli.runMain(Command.run(greetServer, { version: "1.0.0" }).pipe(Effect.provide(NodeServices.layer)))
 * ```
 *
 * @category flags
 * @since 0.1.0
 */
export const flags = (defaults: Defaults = {}): { readonly [K in keyof Settings]: Flag.Flag<Settings[K]> } => {
  const base = Effect.runSync(resolve(defaults))
  return { ...Flags.makePoolFlags(base.manager), ...ServerFlags.makeServerFlags(base) }
}

/**
 * The `ManagerConfig` fields set by the flags, with each field's flag name.
 *
 * @category flags
 * @since 0.1.0
 */
export const flagNames: { readonly [K in keyof ManagerConfig.ManagerConfig]: string } = Object.fromEntries(
  Flags.poolFields.map((field) => [field, Flags.poolFlags[field].name])
) as { readonly [K in keyof ManagerConfig.ManagerConfig]: string }

// The fields of the flags given: ManagerConfig.make rejects a field that is present but undefined.
const givenFields = (settings: Settings): ManagerConfig.Input =>
  Object.fromEntries(
    Flags.poolFields.flatMap((field) => {
      const value: unknown = Option.getOrUndefined(settings[field] as Option.Option<unknown>)
      return value === undefined ? [] : [[field, value]]
    })
  ) as ManagerConfig.Input

// Applies `input` over `base`. When `input` sets one worker bound and `base`'s
// other bound contradicts it, the one set wins and moves the other; only an
// `input` setting both in contradiction is an error.
const overlay = (
  base: ManagerConfig.ManagerConfig,
  input: ManagerConfig.Input
): Effect.Effect<ManagerConfig.ManagerConfig, PoolError.ConfigError> => {
  const { minWorkersCount: min, maxWorkersCount: max } = input
  if (min !== undefined && max === undefined && base.maxWorkersCount > 0 && min > base.maxWorkersCount) {
    return ManagerConfig.make({ ...input, maxWorkersCount: min }, base)
  }
  if (max !== undefined && min === undefined && max > 0 && base.minWorkersCount > max) {
    return ManagerConfig.make({ ...input, minWorkersCount: max }, base)
  }
  return ManagerConfig.make(input, base)
}

/**
 * Combines `defaults`, then the fields of a config file (`file`, see
 * `NodeConfigFile.read`), then the flags given, and validates the result with
 * `ManagerConfig.make`. Each layer wins over a lower one it contradicts: with
 * defaults of 5 to 10 workers, `--max-workers 3` lowers the minimum to 3 and
 * `--min-workers 20` raises the maximum to 20; only two settings of the same
 * layer that contradict each other are an error.
 *
 * @category config
 * @since 0.1.0
 */
export const makeConfig = (
  settings: Settings,
  defaults: Defaults = {},
  file: ManagerConfig.Input = {}
): Effect.Effect<ServerConfig, PoolError.ConfigError> =>
  Effect.gen(function* () {
    const base = yield* resolve(defaults)
    const manager = yield* overlay(yield* overlay(base.manager, file), givenFields(settings))
    const chosen = ServerFlags.choose(settings, base)
    const { path, metricsPort, tlsKey: key, tlsCert: cert, proxyProtocol, agentPort, otlpEndpoint } = chosen
    return {
      manager,
      server: {
        host: chosen.host,
        port: chosen.port,
        ...(path === undefined ? {} : { path }),
        busyReply: chosen.busyReply,
        ...(proxyProtocol ? { proxyProtocol: { trustedProxies: chosen.trustedProxies } } : {}),
        shutdownDelay: chosen.shutdownDelay,
        maxPendingConnections: chosen.maxPendingConnections,
        ...(key !== undefined && cert !== undefined
          ? {
              tls: { minVersion: chosen.tlsMinVersion, ciphers: chosen.tlsCiphers },
              tlsClientAuth: chosen.tlsClientAuth
            }
          : {})
      },
      tlsFiles:
        key !== undefined && cert !== undefined
          ? { key, cert, ...(chosen.tlsCa === undefined ? {} : { ca: chosen.tlsCa }) }
          : undefined,
      metrics: metricsPort === undefined ? undefined : { host: chosen.metricsHost, port: metricsPort },
      logFormat: chosen.logFormat,
      processes: chosen.processes,
      clusterMode: chosen.clusterMode,
      configFile: chosen.config,
      agent: agentPort === undefined ? undefined : { host: chosen.agentHost, port: agentPort },
      otlp: otlpEndpoint === undefined ? undefined : { endpoint: otlpEndpoint, serviceName: chosen.serviceName }
    }
  })

/**
 * The configuration as `flag=value` pairs, e.g. `min-workers=0 max-workers=10 ...`.
 *
 * @category config
 * @since 0.1.0
 */
export const describeConfig = (config: ManagerConfig.ManagerConfig): string =>
  Object.entries(flagNames)
    .map(([field, flag]) => {
      const value = config[field as keyof ManagerConfig.ManagerConfig]
      if (Framing.isFraming(value)) return `${flag}=${Framing.format(value)}`
      return `${flag}=${Duration.isDuration(value) ? showDuration(value) : String(value)}`
    })
    .join(" ")

/**
 * The line logged once listening: the bound address (with the real port
 * when 0 was asked for) and the effective configuration as `flag=value`
 * pairs, e.g. `pool-manager listening on 127.0.0.1:6263 min-workers=0 ...`;
 * `tls=true` ends it when serving TLS, and `processes=N` when given.
 *
 * @category config
 * @since 0.1.0
 */
export const listeningLine = (
  name: string,
  address: NetAddress.SocketAddress,
  config: ManagerConfig.ManagerConfig,
  options?: {
    readonly tls?: boolean | undefined
    /** The processes serving the port (`--processes`). @since 0.2.0 */
    readonly processes?: number | undefined
  }
): string => {
  const where = NetAddress.isInetAddress(address) ? String(address) : `unix:${String(address)}`
  return [
    `${name} listening on ${where}`,
    describeConfig(config),
    ...(options?.tls === true ? ["tls=true"] : []),
    ...(options?.processes === undefined ? [] : [`processes=${options.processes}`])
  ].join(" ")
}
