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
 * and SIGHUP to every worker, waits until all of them have drained and
 * exited, and replaces a worker that dies while serving (a worker that dies
 * before it listened is a startup failure: the primary stops the others and
 * fails).
 *
 * Metrics: each worker answers a `scrape` message on the IPC channel with its
 * `PrometheusMetrics.format` text and whether its pool runs; the primary
 * serves one `/metrics` with every worker's series labelled
 * `process="<n>"` (not summed: per-process values stay visible, and
 * `sum without (process) (...)` adds them up in PromQL) and one `/healthz`.
 *
 * @since 0.1.0
 */
import Cluster, { type Worker } from "node:cluster"
import type * as Net from "node:net"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Scrapes from "./internal/clusterScrape.ts"
import * as ClusterStatus from "./internal/clusterStatus.ts"
import * as ClusterWorker from "./internal/clusterWorker.ts"
import { addressFields } from "./internal/logFields.ts"
import * as NodeMetricsServer from "./NodeMetricsServer.ts"
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
  /** Forward SIGHUP to the workers (to reload their config file). */
  readonly forwardSighup?: boolean | undefined
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
 * Runs the primary process until interrupted: forks the workers, serves the
 * aggregated metrics if asked, and on interruption forwards SIGTERM to every
 * worker and waits for them to exit (killing them after `stopTimeout`). Fails
 * with `ClusterError` when a worker exits before it listened. After a stop,
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
 *   const Pool = PoolManager.layer({ maxWorkersCount: 10 }, (conn) => Effect.ignore(conn.write("OK")))
 *   NodeCli.runMain(Layer.launch(NodeTcpServer.layer({ port: 6263 }).pipe(Layer.provide(Pool))))
 * }
 * ```
 *
 * @category primary
 * @since 0.1.0
 */
export const runPrimary = (options: PrimaryOptions): Effect.Effect<never, ClusterError | ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "pool-manager"
    const context = yield* Effect.context<never>()
    const log = (effect: Effect.Effect<void>) => void Effect.runForkWith(context)(effect)
    const workers = new Map<number, Worker>()
    const listening = new Set<number>()
    const failed = yield* Deferred.make<never, ClusterError>()
    const allExited = yield* Deferred.make<void>()
    let stopping = false
    let announced = false
    let failures = 0

    const scrapeAll = Effect.suspend(() =>
      Effect.forEach(Array.from(workers), ([number, worker]) => Scrapes.ask(worker, number), {
        concurrency: "unbounded"
      })
    ).pipe(Effect.map((answers) => answers.flatMap((answer) => (Option.isSome(answer) ? [answer.value] : []))))

    // Started first so it is closed last: /healthz says 503 while the workers drain.
    if (options.metrics !== undefined) {
      const server = yield* NodeMetricsServer.make({
        ...options.metrics,
        metrics: Effect.map(scrapeAll, (scrapes) => {
          const up = Array.from({ length: options.processes }, (_, i) => {
            const answered = scrapes.some((scrape) => scrape.process === i + 1)
            return `pool_process_up{process="${i + 1}"} ${answered ? 1 : 0}`
          })
          const own = [
            "# HELP pool_processes Server processes configured (--processes)",
            "# TYPE pool_processes gauge",
            `pool_processes ${options.processes}`,
            "# HELP pool_process_up 1 if the process answered this scrape",
            "# TYPE pool_process_up gauge",
            ...up
          ]
          return `${own.join("\n")}\n${aggregate(scrapes)}`
        }),
        status: Effect.suspend(() => ClusterStatus.collect(Array.from(workers), options.processes)),
        health: Effect.suspend(() =>
          stopping
            ? Effect.succeed({ healthy: false, detail: "stopping" })
            : Effect.map(scrapeAll, (scrapes) => {
                const running = scrapes.filter((scrape) => scrape.running).length
                return running === options.processes
                  ? { healthy: true, detail: "ok" }
                  : { healthy: false, detail: `${running} of ${options.processes} processes running` }
              })
        )
      })
      const url = NodeMetricsServer.url(server.address)
      yield* Effect.log(`${name} metrics at ${url}/metrics and /healthz, status page at ${url}/`)
    }

    const mode = options.mode === undefined || options.mode === "auto" ? defaultMode() : options.mode
    // reuseport: the port the first worker bound, given to the others (and to replacements).
    let sharedPort: number | undefined
    // The hand-off needs no port from the first worker: all start at once.
    let forkedAll = mode === "handoff"

    const fork = (number: number) => {
      const env: Record<string, string> = { [processEnv]: String(number), [ClusterWorker.modeEnv]: mode }
      if (sharedPort !== undefined) env[ClusterWorker.portEnv] = String(sharedPort)
      const worker = Cluster.fork(env)
      const pid = worker.process.pid
      let ready = false
      workers.set(number, worker)
      const onListening = (address: Net.AddressInfo | string, via: Mode) => {
        if (ready) return
        ready = true
        listening.add(number)
        if (mode === "reuseport" && sharedPort === undefined && typeof address !== "string") sharedPort = address.port
        // The first worker listens alone; the others start once its port is known.
        if (!forkedAll && !stopping) {
          forkedAll = true
          for (let next = 2; next <= options.processes; next++) fork(next)
        }
        if (announced || listening.size < options.processes) return
        announced = true
        const where = typeof address === "string" ? `unix:${address}` : `${address.address}:${address.port}`
        log(
          Effect.log(`${name} primary: ${options.processes} processes listening on ${where} (${via})`).pipe(
            Effect.annotateLogs({ ...addressFields(address), processes: options.processes, mode: via }),
            Effect.andThen(options.onListening?.(address, via) ?? Effect.void)
          )
        )
      }
      // A hand-off listener is reported by node:cluster, a reuseport one by the worker itself.
      worker.on("listening", (address) =>
        onListening(
          address.addressType === -1
            ? String(address.address)
            : {
                address: address.address ?? "",
                port: address.port ?? 0,
                family: address.addressType === 6 ? "IPv6" : "IPv4"
              },
          "handoff"
        )
      )
      worker.on("message", (message: unknown) => {
        if (ClusterWorker.isListeningMessage(message)) onListening(message.address, "reuseport")
      })
      worker.on("exit", (code, signal) => {
        workers.delete(number)
        listening.delete(number)
        const how = code === null ? `signal ${signal}` : `code ${code}`
        if (stopping) {
          // SIGTERM can arrive before a worker has installed its handler.
          if (code !== 0 && signal !== "SIGTERM") {
            failures++
            log(Effect.logError(`process ${number} (pid ${pid}) exited with ${how}`))
          }
          if (workers.size === 0) Deferred.doneUnsafe(allExited, Effect.void)
        } else if (!ready) {
          Deferred.doneUnsafe(
            failed,
            Effect.fail(
              new ClusterError({ reason: `process ${number} (pid ${pid}) exited with ${how} before listening` })
            )
          )
        } else {
          log(Effect.logError(`process ${number} (pid ${pid}) exited with ${how}; starting a new one`))
          fork(number)
        }
      })
    }

    const stopAll = Effect.suspend(() => {
      stopping = true
      if (workers.size === 0) return Effect.void
      for (const worker of workers.values()) worker.process.kill("SIGTERM")
      // Another signal to the primary is passed on too: it ends the workers' lame-duck period (--shutdown-delay).
      const again = () => {
        for (const worker of workers.values()) worker.process.kill("SIGTERM")
      }
      process.on("SIGINT", again)
      process.on("SIGTERM", again)
      const timeout = Duration.fromInputUnsafe(options.stopTimeout ?? "40 seconds")
      return Effect.log(`${name} primary: stopping ${workers.size} processes`).pipe(
        Effect.andThen(Effect.timeoutOption(Deferred.await(allExited), timeout)),
        Effect.flatMap((done) => {
          if (Option.isSome(done)) return Effect.void
          failures++
          for (const worker of workers.values()) worker.process.kill("SIGKILL")
          return Effect.logError(`${name} primary: processes still running after ${Duration.format(timeout)}; killed`)
        }),
        Effect.andThen(
          Effect.sync(() => {
            if (failures > 0) process.exitCode = 1
          })
        ),
        Effect.ensuring(
          Effect.sync(() => {
            process.off("SIGINT", again)
            process.off("SIGTERM", again)
          })
        )
      )
    })

    yield* Effect.addFinalizer(() => stopAll)
    if (options.forwardSighup === true) {
      const onSighup = () => {
        for (const worker of workers.values()) worker.process.kill("SIGHUP")
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on("SIGHUP", onSighup)),
        () => Effect.sync(() => process.off("SIGHUP", onSighup))
      )
    }
    yield* Effect.log(`${name} primary (pid ${process.pid}): starting ${options.processes} processes`)
    for (let number = 1; number <= (forkedAll ? options.processes : 1); number++) fork(number)
    return yield* Deferred.await(failed)
  })
