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
import * as NodeServices from "@effect/platform-node/NodeServices"
import type * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import type * as PoolError from "@pool-manager/core/PoolError"
import type * as PoolManager from "@pool-manager/core/PoolManager"
import type * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as Effect from "effect/Effect"
import * as CliCommand from "./internal/cliCommand.ts"
import * as CliOutput from "./internal/cliOutput.ts"
import * as internal from "./internal/cliServe.ts"
import * as Signals from "./internal/signals.ts"
import { type Defaults, flags, type ServerConfig, type Settings } from "./NodeCliConfig.ts"
import type * as NodeProxyProtocol from "./NodeProxyProtocol.ts"
import type { ListenError } from "./NodeTcpServer.ts"

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
    CliCommand.validate(defaults, settings)

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
  callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback | PoolManager.Stateful<any, E, R>,
  options?: ServeOptions
): Effect.Effect<never, ListenError | NodeProxyProtocol.ProxyProtocolError, R> =>
  internal.serve(config, callback, options)

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
  /**
   * The callback run for every message (an Effect callback, a `PoolManager.syncCallback`, or either with
   * per-connection state from `PoolManager.withState`, since 0.2.0).
   */
  readonly callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback | PoolManager.Stateful<any, E, R>
  /**
   * Defaults of the flags. A framing the CLI cannot spell (`Framing.custom`) is given here, as `framing`; `--framing`
   * still overrides it.
   */
  readonly defaults?: Defaults | undefined
}

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
    CliCommand.handler(name, options, settings)
  ).pipe(
    Command.validate(validate(options.defaults)),
    Command.withDescription(
      `${options.description ?? "A TCP server handing each message to a pool of workers."}\n\n${CliCommand.precedence}`
    )
  )
}

/**
 * `NodeRuntime.runMain`, except that a program interrupted by SIGINT or
 * SIGTERM (and by nothing else) exits with code 0 instead of 130: for a
 * server, being told to stop and stopping gracefully is a success. A program
 * that set `process.exitCode` during its stop (as `NodeCluster` does when a
 * worker failed) exits with that code. SIGHUP never terminates it: from the
 * start a listener is installed, and `serve` reloads the config file and the
 * TLS files on it (or logs that there is nothing to reload).
 *
 * @category running
 * @since 0.1.0
 */
export const runMain = <A, E>(effect: Effect.Effect<A, E>): void => Signals.runMain(effect)

/**
 * Runs `command(options)` as the process's main program (with `runMain`), on
 * the arguments in `process.argv` unless `args` are given. (`--processes`
 * forks this script again with `process.argv`, so it needs a script file.)
 * A bad flag, value or `POOL_MANAGER_*` variable prints the error and a line
 * pointing at `--help`, and exits with code 2; a fatal startup error exits
 * with code 1. With `--log-format json` both are JSON lines too.
 *
 * @example
 * ```ts
 * import { NodeCli } from "@pool-manager/node"
 *
 * // echo-server.ts: `node echo-server.ts --port 7000 --max-workers 50`;
 * // `--help` lists every flag, SIGINT/SIGTERM drain and exit with code 0.
 * NodeCli.run({
 *   name: "echo-server",
 *   description: "Answers every message with itself.",
 *   callback: (conn, body) => conn.write(body),
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
  const output = CliOutput.withOperatorOutput(options.name ?? "pool-manager", options.args ?? process.argv.slice(2))
  runMain(Effect.provide(output(program), NodeServices.layer))
}
