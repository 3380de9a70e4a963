/**
 * The configuration of the `pool-manager` command: its flags, their defaults,
 * and how defaults, a config file and flags combine into one validated
 * `ServerConfig` (defaults < file < flags). `NodeCli` re-exports all of it
 * and adds the command itself: validation as CLI errors, and running.
 *
 * @since 0.1.0
 */
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import type * as PoolError from "@pool-manager/core/PoolError"
import * as Flag from "effect/cli/Flag"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Flags from "./internal/cliFlags.ts"
import * as NodeCluster from "./NodeCluster.ts"
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
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  readonly busyReply?: string | undefined
  /** Port of the metrics endpoint; left out, there is none unless `--metrics-port` is given. */
  readonly metricsPort?: number | undefined
  readonly metricsHost?: string | undefined
  readonly logFormat?: LogFormat | undefined
  readonly processes?: number | undefined
  /** How the processes share the port (default `auto`, see `NodeCluster.Mode`). */
  readonly clusterMode?: NodeCluster.Mode | "auto" | undefined
  /** Read a PROXY protocol header (v1 or v2) before each connection (default false). */
  readonly proxyProtocol?: boolean | undefined
  /** Who may send that header, as addresses or CIDRs (default loopback). */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /** On SIGINT/SIGTERM, fail /healthz but keep accepting this long before the drain (default 0). */
  readonly shutdownDelay?: Duration.Input | undefined
  /** Port of the HAProxy agent-check endpoint; left out, there is none unless `--agent-port` is given. */
  readonly agentPort?: number | undefined
  readonly agentHost?: string | undefined
  /** Base URL of an OTLP/HTTP collector to export traces and metrics to; left out, nothing is exported. */
  readonly otlpEndpoint?: string | undefined
  /** The `service.name` of the exported telemetry (default: the command's name). */
  readonly serviceName?: string | undefined
}

/**
 * The parsed flags. A flag not given is `None`: `makeConfig` applies the
 * defaults, so it can tell a default from a choice.
 *
 * @category models
 * @since 0.1.0
 */
export type Settings = PoolSettings & {
  readonly host: Option.Option<string>
  readonly port: Option.Option<number>
  readonly path: Option.Option<string>
  readonly busyReply: Option.Option<string>
  readonly tlsKey: Option.Option<string>
  readonly tlsCert: Option.Option<string>
  readonly config: Option.Option<string>
  readonly metricsPort: Option.Option<number>
  readonly metricsHost: Option.Option<string>
  readonly logFormat: Option.Option<LogFormat>
  readonly processes: Option.Option<number>
  readonly clusterMode: Option.Option<NodeCluster.Mode | "auto">
  readonly proxyProtocol: Option.Option<boolean>
  readonly trustedProxies: Option.Option<ReadonlyArray<string>>
  readonly shutdownDelay: Option.Option<Duration.Duration>
  readonly agentPort: Option.Option<number>
  readonly agentHost: Option.Option<string>
  readonly otlpEndpoint: Option.Option<string>
  readonly serviceName: Option.Option<string>
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
  /** PEM files of `--tls-key` and `--tls-cert`; `NodeCli` reads them into `server.tls`. */
  readonly tlsFiles?: { readonly key: string; readonly cert: string } | undefined
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
 * `2 seconds`, `1.5m`, a bare number of milliseconds, or `infinity`.
 * Negative and malformed values give `None`. Used for the flags and for the
 * string durations of a config file.
 *
 * @category parsing
 * @since 0.1.0
 */
export const parseDuration: (text: string) => Option.Option<Duration.Duration> = Flags.parseDuration

const resolve = (defaults: Defaults) => {
  const {
    host,
    port,
    path,
    busyReply,
    metricsPort,
    metricsHost,
    logFormat,
    processes,
    clusterMode,
    proxyProtocol,
    trustedProxies,
    shutdownDelay,
    agentPort,
    agentHost,
    otlpEndpoint,
    serviceName,
    ...input
  } = defaults
  return Effect.map(ManagerConfig.make(input), (manager) => ({
    manager,
    host: host ?? "127.0.0.1",
    port: port ?? 6263,
    path,
    busyReply: busyReply ?? "ERROR_SERVER_BUSY",
    metricsPort,
    metricsHost: metricsHost ?? "127.0.0.1",
    logFormat: logFormat ?? ("text" as LogFormat),
    processes: processes ?? 1,
    clusterMode: clusterMode ?? ("auto" as NodeCluster.Mode | "auto"),
    proxyProtocol: proxyProtocol ?? false,
    trustedProxies: trustedProxies ?? NodeProxyProtocol.defaultTrustedProxies,
    shutdownDelay: Duration.fromInputUnsafe(shutdownDelay ?? 0),
    agentPort,
    agentHost: agentHost ?? "127.0.0.1",
    otlpEndpoint,
    serviceName
  }))
}

/**
 * The server's flags, each optional, with its default from `defaults` shown
 * in `--help`. Throws the `ConfigError` if `defaults` themselves are invalid
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
 *       return yield* NodeCli.serve(config, (conn) => Effect.ignore(conn.write(greeting)), { name: "greet-server" })
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
  return {
    ...Flags.makePoolFlags(base.manager),
    host: Flags.described(Flag.String("host").pipe(Flag.withSchema(Flags.Host)), "Interface to listen on", base.host),
    port: Flags.described(
      Flag.Int("port").pipe(Flag.withSchema(Flags.Port)),
      "TCP port; 0 picks a free one",
      base.port
    ),
    path: Flags.textFlag("path", "file", "Unix socket to listen on instead of host and port", base.path ?? "none"),
    busyReply: Flags.textFlag(
      "busy-reply",
      "text",
      "Reply to a client refused while all workers are busy",
      base.busyReply
    ),
    tlsKey: Flags.fileFlag("tls-key", "Serve TLS with this PEM private key (needs --tls-cert)"),
    tlsCert: Flags.fileFlag("tls-cert", "Serve TLS with this PEM certificate chain (needs --tls-key)"),
    config: Flags.fileFlag("config", "JSON file of pool settings, under the flags; re-read on SIGHUP"),
    metricsPort: Flags.portFlag(
      "metrics-port",
      "Serve GET /metrics (Prometheus) and /healthz on this port; 0 picks a free one",
      base.metricsPort
    ),
    metricsHost: Flags.hostFlag("metrics-host", "Interface of the metrics endpoint", base.metricsHost),
    logFormat: Flags.described(
      Flag.Literals("log-format", ["text", "json"]).pipe(Flag.withMetavar("text|json")),
      "Log lines as text or JSON",
      base.logFormat
    ),
    processes: Flags.countFlag(
      "processes",
      Flags.Size,
      "Server processes sharing the port (node:cluster)",
      base.processes
    ),
    clusterMode: Flags.described(
      Flag.Literals("cluster-mode", NodeCluster.modes).pipe(Flag.withMetavar(NodeCluster.modes.join("|"))),
      "With --processes: each process binds the port (reuseport; the kernel spreads connections) or the " +
        `primary accepts and hands connections over (handoff); auto = ${NodeCluster.defaultMode()} here, handoff for --path`,
      base.clusterMode
    ),
    proxyProtocol: Flags.described(
      Flag.Boolean("proxy-protocol"),
      "Read a PROXY protocol v1/v2 header from each connection (before TLS) and use the client it names",
      base.proxyProtocol
    ),
    trustedProxies: Flags.parsedFlag(
      "trusted-proxies",
      "cidr,...",
      parseList,
      "addresses or CIDRs separated by commas, such as 10.0.0.0/8,::1",
      "Peers allowed to send a PROXY protocol header; others are closed",
      base.trustedProxies.join(",")
    ),
    shutdownDelay: Flags.durationFlag(
      "shutdown-delay",
      "On SIGINT/SIGTERM, answer /healthz 503 but keep accepting this long before draining; a 2nd signal skips it",
      base.shutdownDelay
    ),
    agentPort: Flags.portFlag(
      "agent-port",
      "Answer HAProxy agent checks (up N% of free workers, drain when stopping) on this port",
      base.agentPort
    ),
    agentHost: Flags.hostFlag("agent-host", "Interface of the agent-check endpoint", base.agentHost),
    otlpEndpoint: Flags.parsedFlag(
      "otlp-endpoint",
      "url",
      parseEndpoint,
      "an http:// or https:// URL such as http://127.0.0.1:4318",
      "Export traces and metrics to this OTLP/HTTP collector (JSON to /v1/traces, /v1/metrics)",
      base.otlpEndpoint ?? "off"
    ),
    serviceName: Flags.described(
      Flag.String("service-name").pipe(Flag.withSchema(Name)),
      "The service.name of exported traces and metrics",
      base.serviceName ?? "the command's name"
    )
  }
}

const Name = Schema.String.check(Schema.isNonEmpty({ message: "expected a name" }))

// An OTLP/HTTP collector's base URL: /v1/traces and /v1/metrics are appended.
const parseEndpoint = (text: string): Option.Option<string> => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" ? Option.some(text) : Option.none()
  } catch {
    return Option.none()
  }
}

const parseList = (text: string): Option.Option<ReadonlyArray<string>> => {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
  return entries.length > 0 && NodeProxyProtocol.invalidTrustedProxy(entries) === undefined
    ? Option.some(entries)
    : Option.none()
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
    const path = Option.getOrElse(settings.path, () => base.path)
    const metricsPort = Option.getOrElse(settings.metricsPort, () => base.metricsPort)
    const key = Option.getOrUndefined(settings.tlsKey)
    const cert = Option.getOrUndefined(settings.tlsCert)
    const proxyProtocol = Option.getOrElse(settings.proxyProtocol, () => base.proxyProtocol)
    const agentPort = Option.getOrElse(settings.agentPort, () => base.agentPort)
    const otlpEndpoint = Option.getOrElse(settings.otlpEndpoint, () => base.otlpEndpoint)
    const trustedProxies = Option.getOrElse(settings.trustedProxies, () => base.trustedProxies)
    return {
      manager,
      server: {
        host: Option.getOrElse(settings.host, () => base.host),
        port: Option.getOrElse(settings.port, () => base.port),
        ...(path === undefined ? {} : { path }),
        busyReply: Option.getOrElse(settings.busyReply, () => base.busyReply),
        ...(proxyProtocol ? { proxyProtocol: { trustedProxies } } : {}),
        shutdownDelay: Option.getOrElse(settings.shutdownDelay, () => base.shutdownDelay)
      },
      tlsFiles: key !== undefined && cert !== undefined ? { key, cert } : undefined,
      metrics:
        metricsPort === undefined
          ? undefined
          : { host: Option.getOrElse(settings.metricsHost, () => base.metricsHost), port: metricsPort },
      logFormat: Option.getOrElse(settings.logFormat, () => base.logFormat),
      processes: Option.getOrElse(settings.processes, () => base.processes),
      clusterMode: Option.getOrElse(settings.clusterMode, () => base.clusterMode),
      configFile: Option.getOrUndefined(settings.config),
      agent:
        agentPort === undefined
          ? undefined
          : { host: Option.getOrElse(settings.agentHost, () => base.agentHost), port: agentPort },
      otlp:
        otlpEndpoint === undefined
          ? undefined
          : { endpoint: otlpEndpoint, serviceName: Option.getOrElse(settings.serviceName, () => base.serviceName) }
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
      return `${flag}=${Duration.isDuration(value) ? Flags.showDuration(value) : String(value)}`
    })
    .join(" ")

/**
 * The line logged once listening: the bound address (with the real port
 * when 0 was asked for) and the effective configuration as `flag=value`
 * pairs, e.g. `pool-manager listening on 127.0.0.1:6263 min-workers=0 ...`;
 * `tls=true` ends it when serving TLS.
 *
 * @category config
 * @since 0.1.0
 */
export const listeningLine = (
  name: string,
  address: NetAddress.SocketAddress,
  config: ManagerConfig.ManagerConfig,
  options?: { readonly tls?: boolean | undefined }
): string => {
  const where = NetAddress.isInetAddress(address) ? String(address) : `unix:${String(address)}`
  return [`${name} listening on ${where}`, describeConfig(config), ...(options?.tls === true ? ["tls=true"] : [])].join(
    " "
  )
}
