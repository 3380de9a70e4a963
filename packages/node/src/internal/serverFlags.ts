/**
 * The table of the server's own flags (where to listen, TLS, metrics, the
 * processes, PROXY protocol, the agent check, OTLP): one row per setting with
 * its documentation, its flag and its default (the listener's from
 * `listenerDefaults`, which `NodeTcpServer` applies). `NodeCliConfig`'s `Defaults`
 * and `Settings`, the defaults it resolves and its `flags` are all read from
 * here, so a new server flag is one row.
 */
import type * as Tls from "node:tls"
import * as Flag from "effect/cli/Flag"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { LogFormat } from "../NodeCliConfig.ts"
import * as NodeCluster from "../NodeCluster.ts"
import * as NodeProxyProtocol from "../NodeProxyProtocol.ts"
import * as NodeTls from "../NodeTls.ts"
import { withEnv } from "./cliEnv.ts"
import {
  countFlag,
  described,
  durationFlag,
  fileFlag,
  hostFlag,
  Port,
  parsedFlag,
  portFlag,
  Size,
  textFlag
} from "./cliFlags.ts"
import { listenerDefaults } from "./listenerDefaults.ts"

/**
 * One server setting: its flag's name, its default given what `Defaults` set
 * for it (`D`, undefined when nothing), and how to build its flag given that
 * default (shown by `--help`). `S` is the flag's value, `R` the resolved default.
 */
export interface ServerFlag<S, D, R> {
  readonly name: string
  readonly fallback: (given: D | undefined) => R
  readonly make: (name: string, fallback: R) => Flag.Flag<Option.Option<S>>
}

const row = <S, D, R>(
  name: string,
  fallback: ServerFlag<S, D, R>["fallback"],
  make: ServerFlag<S, D, R>["make"]
): ServerFlag<S, D, R> => ({ name, fallback, make })

// A setting with a default, which `Defaults` may replace.
const setting = <S>(name: string, fallback: S, make: ServerFlag<S, S, S>["make"]): ServerFlag<S, S, S> =>
  row(name, (given: S | undefined) => given ?? fallback, make)

// A setting off unless `Defaults` or the flag sets it.
const optional = <S>(name: string, make: ServerFlag<S, S, S | undefined>["make"]): ServerFlag<S, S, S | undefined> =>
  row(name, (given: S | undefined) => given, make)

// A file only a flag names: `Defaults` has no field for it (`D` is never).
const file = (name: string, description: string): ServerFlag<string, never, undefined> =>
  row(
    name,
    () => undefined,
    (name: string) => fileFlag(name, description)
  )

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
 * The server's settings, written once, in the order `--help` lists them:
 * their documentation (shown on the fields of `Defaults` and `Settings`),
 * their flag and their default.
 */
export const serverFlags = {
  /** Interface to listen on (default 127.0.0.1). */
  host: setting<string>("host", listenerDefaults.host, (name, fallback) =>
    hostFlag(name, "Interface to listen on", fallback)
  ),
  /** TCP port to listen on (default 6263); 0 picks a free one. */
  port: setting<number>("port", listenerDefaults.port, (name, fallback) =>
    described(Flag.Int(name).pipe(Flag.withSchema(Port)), "TCP port; 0 picks a free one", fallback)
  ),
  /** Unix socket to listen on instead of host and port; left out, there is none. */
  path: optional<string>("path", (name, fallback) =>
    textFlag(name, "file", "Unix socket to listen on instead of host and port", fallback ?? "none")
  ),
  /** Reply to a client refused while all workers are busy (default `ERROR_SERVER_BUSY`). */
  busyReply: setting<string>("busy-reply", listenerDefaults.busyReply, (name, fallback) =>
    textFlag(name, "text", "Reply to a client refused while all workers are busy", fallback)
  ),
  /** PEM private key to serve TLS with (with `tlsCert`). */
  tlsKey: file("tls-key", "Serve TLS with this PEM private key (needs --tls-cert)"),
  /** PEM certificate chain to serve TLS with (with `tlsKey`). */
  tlsCert: file("tls-cert", "Serve TLS with this PEM certificate chain (needs --tls-key)"),
  /** PEM certificates of the CAs that sign client certificates (mutual TLS, with `tlsClientAuth`). */
  tlsCa: file("tls-ca", "Verify client certificates with these PEM CA certificates (with --tls-client-auth)"),
  /** Client certificates: `none` (default), `request` (optional) or `require` (verified against `tlsCa`). */
  tlsClientAuth: setting<NodeTls.ClientAuth>("tls-client-auth", listenerDefaults.tlsClientAuth, (name, fallback) =>
    described(
      Flag.Literals(name, NodeTls.clientAuths).pipe(Flag.withMetavar(NodeTls.clientAuths.join("|"))),
      "Ask TLS clients for a certificate (request) or close those without one --tls-ca verifies (require)",
      fallback
    )
  ),
  /** Oldest TLS version accepted (default `TLSv1.2`). */
  tlsMinVersion: setting<Tls.SecureVersion>("tls-min-version", listenerDefaults.tlsMinVersion, (name, fallback) =>
    described(
      Flag.Literals(name, ["TLSv1.2", "TLSv1.3"] as const).pipe(Flag.withMetavar("TLSv1.2|TLSv1.3")),
      "Oldest TLS version a client may use",
      fallback
    )
  ),
  /** OpenSSL cipher list (default: Mozilla's "intermediate" profile, `NodeTls.intermediateCiphers`). */
  tlsCiphers: setting<string>("tls-ciphers", listenerDefaults.tlsCiphers, (name) =>
    textFlag(
      name,
      "list",
      "OpenSSL cipher suites, separated by colons",
      "Mozilla intermediate: forward-secret AEAD only"
    )
  ),
  /** Connections in a TLS handshake or waiting for a PROXY header at once (default 1,024); over it, closed. */
  maxPendingConnections: setting<number>(
    "max-pending-connections",
    listenerDefaults.maxPendingConnections,
    (name, fallback) =>
      countFlag(name, Size, "Most connections in a TLS handshake or awaiting a PROXY header; more are closed", fallback)
  ),
  /** JSON or YAML (`.yaml`, `.yml`) file of pool settings, under the flags; re-read on SIGHUP. */
  config: file(
    "config",
    "JSON or YAML (.yaml/.yml) file of pool settings, under flags and environment; re-read on SIGHUP"
  ),
  /**
   * Check the configuration a start would use (flags, environment, the
   * `config` file if any, the TLS files), print the result and exit (0:
   * valid, 1: not); a unit's reload guard.
   */
  check: row(
    "check",
    (_: never | undefined) => undefined,
    (name: string) =>
      described(
        Flag.Boolean(name),
        "Check the settings a start would use (flags, environment, --config, TLS files) and exit: 0 if valid, 1 if not; serves nothing",
        "off"
      )
  ),
  /** Check this config file with the other settings, print the result and exit (0: valid, 1: not). */
  checkConfig: file(
    "check-config",
    "Check this config file (with the flags and environment) and exit: 0 if valid, 1 if not; serves nothing"
  ),
  /** Port of the metrics endpoint; left out, there is none unless `--metrics-port` is given. */
  metricsPort: optional<number>("metrics-port", (name, fallback) =>
    portFlag(name, "Serve GET /metrics (Prometheus) and /healthz on this port; 0 picks a free one", fallback)
  ),
  /** Interface of the metrics endpoint (default 127.0.0.1). */
  metricsHost: setting<string>("metrics-host", "127.0.0.1", (name, fallback) =>
    hostFlag(name, "Interface of the metrics endpoint", fallback)
  ),
  /** Log lines as text (Effect's default logger) or JSON, one object per line (default `text`). */
  logFormat: setting<LogFormat>("log-format", "text", (name, fallback) =>
    described(
      Flag.Literals(name, ["text", "json"]).pipe(Flag.withMetavar("text|json")),
      "Log lines as text or JSON",
      fallback
    )
  ),
  /** Server processes sharing the port (`node:cluster`; default 1, this process serves). */
  processes: setting<number>("processes", 1, (name, fallback) =>
    countFlag(name, Size, "Server processes sharing the port (node:cluster)", fallback)
  ),
  /** How the processes share the port (default `auto`, see `NodeCluster.Mode`). */
  clusterMode: setting<NodeCluster.Mode | "auto">("cluster-mode", "auto", (name, fallback) =>
    described(
      Flag.Literals(name, NodeCluster.modes).pipe(Flag.withMetavar(NodeCluster.modes.join("|"))),
      "With --processes: each process binds the port (reuseport; the kernel spreads connections) or the " +
        `primary accepts and hands connections over (handoff); auto = ${NodeCluster.defaultMode()} here, handoff for --path`,
      fallback
    )
  ),
  /** Read a PROXY protocol header (v1 or v2) before each connection (default false). */
  proxyProtocol: setting<boolean>("proxy-protocol", false, (name, fallback) =>
    described(
      Flag.Boolean(name),
      "Read a PROXY protocol v1/v2 header from each connection (before TLS) and use the client it names",
      fallback
    )
  ),
  /** Who may send that header, as addresses or CIDRs (default loopback). */
  trustedProxies: setting<ReadonlyArray<string>>(
    "trusted-proxies",
    NodeProxyProtocol.defaultTrustedProxies,
    (name, fallback) =>
      parsedFlag(
        name,
        "cidr,...",
        parseList,
        "addresses or CIDRs separated by commas, such as 10.0.0.0/8,::1",
        "Peers allowed to send a PROXY protocol header; others are closed",
        fallback.join(",")
      )
  ),
  /** On SIGINT/SIGTERM, fail /healthz but keep accepting this long before the drain (default 0). */
  shutdownDelay: row<Duration.Duration, Duration.Input, Duration.Duration>(
    "shutdown-delay",
    (given) => Duration.fromInputUnsafe(given ?? listenerDefaults.shutdownDelay),
    (name, fallback) =>
      durationFlag(
        name,
        "On SIGINT/SIGTERM, answer /healthz 503 but keep accepting this long before draining; a 2nd signal skips it",
        fallback
      )
  ),
  /** Port of the HAProxy agent-check endpoint; left out, there is none unless `--agent-port` is given. */
  agentPort: optional<number>("agent-port", (name, fallback) =>
    portFlag(name, "Answer HAProxy agent checks (up N% of free workers, drain when stopping) on this port", fallback)
  ),
  /** Interface of the agent-check endpoint (default 127.0.0.1). */
  agentHost: setting<string>("agent-host", "127.0.0.1", (name, fallback) =>
    hostFlag(name, "Interface of the agent-check endpoint", fallback)
  ),
  /** Base URL of an OTLP/HTTP collector to export traces and metrics to; left out, nothing is exported. */
  otlpEndpoint: optional<string>("otlp-endpoint", (name, fallback) =>
    parsedFlag(
      name,
      "url",
      parseEndpoint,
      "an http:// or https:// URL such as http://127.0.0.1:4318",
      "Export traces and metrics to this OTLP/HTTP collector (JSON to /v1/traces, /v1/metrics)",
      fallback ?? "off"
    )
  ),
  /** The `service.name` of the exported telemetry (default: the command's name). */
  serviceName: optional<string>("service-name", (name, fallback) =>
    described(
      Flag.String(name).pipe(Flag.withSchema(Name)),
      "The service.name of exported traces and metrics",
      fallback ?? "the command's name"
    )
  )
}

export type Table = typeof serverFlags
export type Field = keyof Table

/** The value of a field's flag. */
export type SettingOf<K extends Field> = Table[K] extends ServerFlag<infer S, infer _D, infer _R> ? S : never
/** What `Defaults` may set a field to; `never` for a field it has not. */
export type DefaultOf<K extends Field> = Table[K] extends ServerFlag<infer _S, infer D, infer _R> ? D : never
/** A field's default once resolved. */
export type ResolvedOf<K extends Field> = Table[K] extends ServerFlag<infer _S, infer _D, infer R> ? R : never
/** `K` when `Defaults` has the field, else never (to filter a mapped type's keys, keeping their docs). */
export type InDefaults<K extends Field> = [DefaultOf<K>] extends [never] ? never : K

export type Resolved = { readonly [K in Field]: ResolvedOf<K> }

export const fields = Object.keys(serverFlags) as ReadonlyArray<Field>

export const isField = (key: string): key is Field => Object.hasOwn(serverFlags, key)

// Each row's `fallback` takes its own field's type: the union of rows cannot
// check that `defaults[field]` is that field's, but `fields` pairs them.
export const resolveDefaults = (defaults: { readonly [K in Field]?: unknown }): Resolved =>
  Object.fromEntries(fields.map((field) => [field, serverFlags[field].fallback(defaults[field] as never)])) as Resolved

export const makeServerFlags = (base: Resolved) =>
  Object.fromEntries(
    fields.map((field) => {
      const { name, make } = serverFlags[field]
      // As in `resolveDefaults`: `base[field]` is this row's default, which the union cannot see.
      return [field, withEnv(make(name, base[field] as never) as Flag.Flag<Option.Option<unknown>>, name)]
    })
  ) as { readonly [K in Field]: Flag.Flag<Option.Option<SettingOf<K>>> }

/** Each field's flag if given, else its default. */
export const choose = (
  settings: { readonly [K in Field]: Option.Option<SettingOf<K>> },
  base: Resolved
): { readonly [K in Field]: SettingOf<K> | ResolvedOf<K> } =>
  Object.fromEntries(
    fields.map((field) => [field, Option.getOrElse(settings[field] as Option.Option<unknown>, () => base[field])])
  ) as { readonly [K in Field]: SettingOf<K> | ResolvedOf<K> }
