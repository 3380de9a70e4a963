/**
 * Several server processes sharing one listening port, with `node:cluster`,
 * to use every core.
 *
 * The primary process forks `processes` workers running the same script with
 * the same arguments; each worker knows its number (1..N) from the
 * `POOL_MANAGER_PROCESS` environment variable and runs an ordinary server.
 * How connections reach the workers is the `mode`:
 *
 * - `reuseport` (the default on Linux): each worker binds the port itself
 *   with `SO_REUSEPORT` (see `NodeTcpServer`'s `reusePort`) and the kernel
 *   spreads new connections over them by a hash of the client's address and
 *   port. Nothing passes through the primary. The first worker binds first;
 *   the others bind the port it got, so port 0 works too.
 * - `handoff` (elsewhere, and for unix sockets): node:cluster's own sharing;
 *   the primary accepts every connection and passes it to a worker over IPC,
 *   in turn.
 *
 * The primary serves nothing itself. It forwards SIGINT and SIGTERM (as SIGTERM)
 * and SIGHUP to every worker, and waits until all of them have drained and
 * exited. It supervises them: a worker that exits is replaced after a backoff
 * (100 ms, doubling with each failure in a row, up to 10 s), however often it
 * fails, and counted in `pool_process_restarts_total{process}`; only while
 * no worker ever listened (at start) does an exit stop the cluster, with
 * `ClusterError`. `/healthz` answers 200 while at least one worker serves,
 * its body saying how many of how many.
 *
 * Metrics: each worker answers a `scrape` message on the IPC channel with its
 * `PrometheusMetrics.format` text and whether its pool runs; the primary
 * serves one `/metrics` with every worker's series labelled
 * `process="<n>"` (not summed: per-process values stay visible, and
 * `sum without (process) (...)` adds them up in PromQL) and one `/healthz`.
 *
 * @since 0.1.0
 */
import type * as Net from "node:net"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Scrapes from "./internal/clusterScrape.ts"
import * as ClusterWorker from "./internal/clusterWorker.ts"
import type * as NodeTcpServer from "./NodeTcpServer.ts"
import type { ListenError } from "./NodeTcpServer.ts"

/**
 * The environment variable that tells a forked worker its number (1..N).
 *
 * @category constants
 * @since 0.1.0
 */
export const processEnv: typeof ClusterWorker.processEnv = ClusterWorker.processEnv

/**
 * This process's number when it is a worker forked by `runPrimary`, else `undefined`.
 *
 * @category workers
 * @since 0.1.0
 */
export const workerNumber: () => number | undefined = ClusterWorker.workerNumber

/**
 * How connections reach the workers: `reuseport` (each worker binds the port
 * with `SO_REUSEPORT`, the kernel spreads connections) or `handoff`
 * (node:cluster's primary accepts them and passes them over IPC).
 *
 * @category models
 * @since 0.1.0
 */
export type Mode = "reuseport" | "handoff"

/**
 * The modes, in the order `--cluster-mode` lists them (`auto` picks `defaultMode`).
 *
 * @category models
 * @since 0.1.0
 */
export const modes: readonly ["auto", "reuseport", "handoff"] = ["auto", "reuseport", "handoff"]

/**
 * The mode `auto` picks: `reuseport` on Linux, where the kernel balances
 * new connections over the sockets sharing a port, `handoff` elsewhere
 * (macOS, for one, lets several sockets bind but does not balance them).
 *
 * @category models
 * @since 0.1.0
 */
export const defaultMode = (): Mode => (process.platform === "linux" ? "reuseport" : "handoff")

/**
 * The cluster could not start: a worker exited before it listened.
 *
 * @category errors
 * @since 0.1.0
 */
export class ClusterError extends Schema.TaggedError<ClusterError>()("ClusterError", {
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/**
 * In a worker: until the scope closes, answers the primary's scrape requests
 * with this process's metrics (`PrometheusMetrics.format` in the current
 * context) and `running`.
 *
 * @category workers
 * @since 0.1.0
 */
export const answerScrapes: (running: Effect.Effect<boolean>) => Effect.Effect<void, never, Scope.Scope> =
  Scrapes.answer

/**
 * One worker's answer to a scrape.
 *
 * @category models
 * @since 0.1.0
 */
export interface Scrape {
  /** The worker's number, the value of the `process` label. */
  readonly process: number
  readonly metrics: string
  readonly running: boolean
}

/**
 * Merges the Prometheus texts of several processes into one: every sample
 * gets a `process="<n>"` label, and the samples of a family stay together
 * under one `# HELP` and `# TYPE` (as the format requires), families in the
 * order they first appear.
 *
 * @category metrics
 * @since 0.1.0
 */
export const aggregate: (scrapes: ReadonlyArray<Omit<Scrape, "running">>) => string = Scrapes.aggregate

/**
 * Options for `runPrimary`.
 *
 * @category models
 * @since 0.1.0
 */
export interface PrimaryOptions {
  /** How many workers to run (at least 1). */
  readonly processes: number
  /** The program's name, for log lines (default `pool-manager`). */
  readonly name?: string | undefined
  /** Serve the aggregated `/metrics` and `/healthz` here. */
  readonly metrics?: { readonly host: string; readonly port: number } | undefined
  /** After forwarding a stop signal, how long to wait for the workers before killing them (default 40 seconds). */
  readonly stopTimeout?: Duration.Input | undefined
  /**
   * Deprecated and ignored: SIGHUP is always passed on to the workers (they
   * reload their config file and TLS files, or log that there is nothing to reload).
   */
  readonly forwardSighup?: boolean | undefined
  /**
   * The config file the workers read (`--config`): the primary reads it at
   * start and on each SIGHUP, checks it with `check` (after the file's own
   * parsing, as the workers would), and starts every replacement with the
   * last text that passed (see `lastGoodConfig`), so a file broken on disk
   * cannot stop a respawn.
   */
  readonly configFile?:
    | {
        /** The file, as the workers are given it. */
        readonly path: string
        /** Checks a text of the file (beyond its own parsing): a failure keeps the last text that passed. */
        readonly check?: ((text: string) => Effect.Effect<unknown, { readonly message: string }>) | undefined
      }
    | undefined
  /**
   * How connections reach the workers (default `auto`: `defaultMode()`). In
   * the `reuseport` mode a worker that listens on a unix socket, or not with
   * `NodeTcpServer`, falls back to the hand-off for that listener.
   */
  readonly mode?: Mode | "auto" | undefined
  /**
   * Called once every worker listens, with the address they share and how
   * the last of them listens (`handoff` when it fell back, see `mode`).
   */
  readonly onListening?: ((address: Net.AddressInfo | string, mode: Mode) => Effect.Effect<void>) | undefined
}

/**
 * Runs the primary process until interrupted: forks the workers, replaces
 * those that exit (with backoff), serves the aggregated metrics if asked, and
 * on interruption forwards SIGTERM to every worker and waits for them to exit
 * (killing them after `stopTimeout`). Fails with `ClusterError` when a worker
 * exits before any worker ever listened. After a stop,
 * `process.exitCode` is 1 if a worker exited with an error.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeCli, NodeCluster, NodeTcpServer } from "@pool-manager/node"
 * import { Effect, Layer } from "effect"
 *
 * // One script, run as the primary and as each of its 4 workers, which share
 * // port 6263. (`pool-manager --processes 4` does this, with metrics.)
 * if (NodeCluster.workerNumber() === undefined) {
 *   NodeCli.runMain(NodeCluster.runPrimary({ processes: 4 }).pipe(Effect.scoped))
 * } else {
 *   const Pool = PoolManager.layer({ maxWorkersCount: 10 }, (conn) => conn.write("OK"))
 *   const Server = NodeTcpServer.layer(NodeCluster.serverOptions({ port: 6263 }))
 *   NodeCli.runMain(Layer.launch(Server.pipe(Layer.provide(Pool))))
 * }
 * ```
 *
 * @category primary
 * @since 0.1.0
 */
export const runPrimary = (options: PrimaryOptions): Effect.Effect<never, ClusterError | ListenError, Scope.Scope> =>
  // Loaded when a primary starts: its metrics server brings Effect's HTTP
  // stack, which a worker (most processes of a cluster) never uses.
  Effect.flatMap(
    Effect.promise(() => import("./internal/supervisor.ts")),
    (Supervisor) => Supervisor.runPrimary(options)
  )

/**
 * The options `NodeTcpServer` needs in a process of the cluster: in the
 * `reuseport` mode, `reusePort`, the port the first process bound (so port 0
 * means one port for all) and `onListening` telling the primary it listens;
 * elsewhere (the primary, a single process, a unix socket, the `handoff`
 * mode) `options` unchanged. The cluster role comes from the environment the
 * primary forked the process with, read here once and made explicit.
 *
 * @example
 * ```ts
 * import { NodeCluster, NodeTcpServer } from "@pool-manager/node"
 *
 * // In a process forked by runPrimary: bind the shared port as the primary expects.
 * const options: NodeTcpServer.Options = NodeCluster.serverOptions({ host: "127.0.0.1", port: 6263 })
 * ```
 *
 * @category workers
 * @since 0.2.0
 */
export const serverOptions = (options: NodeTcpServer.Options): NodeTcpServer.Options => {
  const clustered = options.path === undefined ? ClusterWorker.reusePort() : undefined
  if (clustered === undefined) return options
  const onListening = options.onListening
  return {
    ...options,
    port: clustered.port ?? options.port,
    reusePort: true,
    onListening: (address) => {
      if (typeof address !== "string") ClusterWorker.announce(address)
      onListening?.(address)
    }
  }
}

/**
 * In a process forked by `runPrimary` with a `configFile`: the text of that
 * file the primary last loaded successfully, to start from instead of the
 * file on disk (which may have been broken since). `undefined` elsewhere.
 *
 * @category workers
 * @since 0.2.0
 */
export const lastGoodConfig = (): string | undefined =>
  workerNumber() === undefined ? undefined : process.env[ClusterWorker.configTextEnv]
