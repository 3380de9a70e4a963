/**
 * The body of `NodeCli.serve`: the pool, the listener and the endpoints that
 * report on them (metrics, status page, agent check), stopped in that order,
 * with the SIGHUP reloads and the log lines of the start and the stop. The
 * endpoints start before the pool and ask for it through one `Serving`
 * record, so they answer until it has drained.
 */
import * as Fs from "node:fs/promises"
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import * as NodeAgentCheck from "../NodeAgentCheck.ts"
import type { ServeOptions } from "../NodeCli.ts"
import { describeConfig, flagNames, listeningLine, type ServerConfig } from "../NodeCliConfig.ts"
import * as NodeCluster from "../NodeCluster.ts"
import * as NodeConfigFile from "../NodeConfigFile.ts"
import * as NodeMetricsServer from "../NodeMetricsServer.ts"
import type * as NodeProxyProtocol from "../NodeProxyProtocol.ts"
import * as NodeStatusPage from "../NodeStatusPage.ts"
import type { ListenError } from "../NodeTcpServer.ts"
import * as NodeTcpServer from "../NodeTcpServer.ts"
import { userError } from "./cliOutput.ts"
import * as ClusterStatus from "./clusterStatus.ts"
import { addressFields, logWithFields, settingFields, where } from "./logFields.ts"
import * as ProcessMetrics from "./processMetrics.ts"
import * as Signals from "./signals.ts"
import * as TlsPolicy from "./tls.ts"

/** The pool and its listener, set together once both run. */
interface Running {
  readonly manager: PoolManager.PoolManager["Service"]
  readonly server: NodeTcpServer.NodeTcpServer["Service"]
}

/** When the stop began, and the connections busy then. */
interface StopStart {
  readonly at: number
  readonly busy: number
  readonly manager: PoolManager.PoolManager["Service"]
}

/**
 * What the pieces of `serve` share: the pool and the listener once they run
 * (the endpoints start before them), the endpoints' lines to log once the
 * server listens, and the start of the stop, for the last line. Each is one
 * field, set at once: a reader sees all of it or nothing.
 */
interface Serving {
  readonly name: string
  readonly config: ServerConfig
  running: Running | undefined
  readonly endpointLines: Array<string>
  stop: StopStart | undefined
}

const health = (serving: Serving): Effect.Effect<NodeMetricsServer.Health> =>
  Effect.suspend(() => {
    if (serving.running === undefined) return Effect.succeed({ healthy: false, detail: "starting" })
    const { manager, server } = serving.running
    return Effect.map(Effect.all([manager.stats, server.draining]), ([{ running }, draining]) =>
      running && !draining ? { healthy: true, detail: "ok" } : { healthy: false, detail: "stopping" }
    )
  })

// Before the server listens, and once it stopped, there is nothing to send clients to.
const agentState = (serving: Serving): Effect.Effect<NodeAgentCheck.State> =>
  Effect.suspend(() => {
    if (serving.running === undefined) return Effect.succeed({ draining: true, busy: 0, max: 0 })
    const { manager, server } = serving.running
    return Effect.map(Effect.all([manager.stats, manager.config, server.draining]), ([stats, config, draining]) => ({
      draining: draining || !stats.running,
      busy: stats.busy,
      max: config.maxWorkersCount
    }))
  })

const statusSnapshot = (serving: Serving): Effect.Effect<NodeStatusPage.Snapshot | undefined> =>
  Effect.suspend(() =>
    serving.running === undefined ? Effect.undefined : NodeStatusPage.snapshot(serving.running.manager)
  )

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

export type TlsFiles = NonNullable<ServerConfig["tlsFiles"]>

/**
 * Reads the TLS files. Read here rather than by the TLS server, so a missing
 * file or a key that does not match its certificate stops the program with
 * one clear line (and a reload that hits one keeps the running pair).
 */
export const readTls = (files: TlsFiles) =>
  Effect.tryPromise({
    try: async () => {
      const key = await Fs.readFile(files.key)
      const cert = await Fs.readFile(files.cert)
      const ca = files.ca === undefined ? undefined : await Fs.readFile(files.ca)
      TlsPolicy.check({ key, cert, ...(ca === undefined ? {} : { ca }) })
      return { key, cert, ...(ca === undefined ? {} : { ca }) }
    },
    catch: (cause) =>
      userError({
        message: `cannot use --tls-key ${files.key} and --tls-cert ${files.cert}${files.ca === undefined ? "" : ` and --tls-ca ${files.ca}`}: ${(cause as Error).message}`
      })
  })

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

// On SIGHUP: the config file again, applied to the running pool.
const reloadConfigOnSighup = (
  serving: Serving,
  pool: PoolManager.PoolManager["Service"],
  file: string,
  options: ServeOptions | undefined,
  reloads: ProcessMetrics.ReloadStatus
) => {
  const { name, config } = serving
  const reconfigure =
    options?.reconfigure ??
    ((input: ManagerConfig.Input) => Effect.flatMap(pool.config, (current) => ManagerConfig.make(input, current)))
  return NodeConfigFile.reloadOnSighup(
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

const stoppingLine = (serving: Serving, pool: PoolManager.PoolManager["Service"]) =>
  Effect.gen(function* () {
    const { name, config } = serving
    const received = Signals.stopSignal()
    const stats = yield* pool.stats
    serving.stop = { at: Date.now(), busy: stats.busy, manager: pool }
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

const stoppedLine = (serving: Serving) =>
  Effect.gen(function* () {
    const { name, stop } = serving
    // The stop began before the pool ran (a failed start): nothing drained.
    if (stop === undefined) return
    const millis = Date.now() - stop.at
    // The pool counts only what a drain cut, and this one is its only drain.
    const cut = (yield* stop.manager.stats).interruptedByDrain
    const took = Duration.format(Duration.millis(millis))
    yield* Effect.log(
      `${name} stopped: ${stop.busy - cut} connections drained${cut > 0 ? `, ${cut} cut at the drain timeout` : ""} in ${took}`
    ).pipe(Effect.annotateLogs({ drained: stop.busy - cut, cut, stopMillis: millis }))
  })

// JSON lines carry the address and settings as fields; the text line keeps them in its message.
const listeningLog = (serving: Serving, server: NodeTcpServer.NodeTcpServer["Service"]) => {
  const { name, config } = serving
  const tls = config.server.tls !== undefined
  const processes = config.processes ?? 1
  return logWithFields(
    config.logFormat === "json",
    `${name} listening on ${where(server.address)}`,
    { ...addressFields(server.address), processes, tls, ...settingFields(config.manager, flagNames) },
    listeningLine(name, server.address, config.manager, { tls, processes })
  )
}

/**
 * The endpoints that report on the pool: in a cluster's process, the answers
 * to the primary's scrapes and status requests; else the metrics server if
 * configured. Then the agent check, if configured.
 */
const startEndpoints = (serving: Serving, worker: number | undefined) =>
  Effect.gen(function* () {
    const { name, config } = serving
    if (worker !== undefined) {
      yield* NodeCluster.answerScrapes(Effect.map(health(serving), ({ healthy }) => healthy))
      yield* ClusterStatus.answer(statusSnapshot(serving))
    } else if (config.metrics !== undefined) {
      const metrics = yield* NodeMetricsServer.make({
        ...config.metrics,
        health: health(serving),
        status: statusSnapshot(serving)
      })
      const url = NodeMetricsServer.url(metrics.address)
      serving.endpointLines.push(`${name} metrics at ${url}/metrics and /healthz, status page at ${url}/`)
    }
    if (config.agent !== undefined) {
      const agent = yield* NodeAgentCheck.make({
        ...config.agent,
        state: agentState(serving)
      })
      serving.endpointLines.push(`${name} agent-check at ${String(agent.address)}`)
    }
  })

/** Once the pool and the listener run: the SIGHUP reloads, the stop's first line, and the listening lines. */
const servePool = (serving: Serving, options: ServeOptions | undefined, reloads: ProcessMetrics.ReloadStatus) =>
  Effect.gen(function* () {
    const { name, config } = serving
    const pool = yield* PoolManager.PoolManager
    const server = yield* NodeTcpServer.NodeTcpServer
    serving.running = { manager: pool, server }
    const file = config.configFile
    if (file !== undefined) yield* reloadConfigOnSighup(serving, pool, file, options, reloads)
    if (config.tlsFiles !== undefined) yield* reloadTlsOnSighup(config.tlsFiles, server)
    if (file === undefined && config.tlsFiles === undefined) {
      yield* Signals.onSighup(Effect.logInfo(`SIGHUP: ${name} has nothing to reload (no --config, no TLS files)`))
    }
    // Added last, so it runs first: the moment the stop begins.
    yield* Effect.addFinalizer(() => stoppingLine(serving, pool))
    yield* listeningLog(serving, server)
    for (const line of serving.endpointLines) yield* Effect.log(line)
    return yield* Effect.never
  })

/** `NodeCli.serve`: the endpoints reporting on the pool start before it, so they answer until it has drained. */
export const serve = <E, R>(
  config: ServerConfig,
  callback: PoolManager.Callback<E, R> | PoolManager.SyncCallback | PoolManager.Stateful<any, E, R>,
  options?: ServeOptions
): Effect.Effect<never, ListenError | NodeProxyProtocol.ProxyProtocolError, R> => {
  const worker = NodeCluster.workerNumber()
  return Effect.gen(function* () {
    const serving: Serving = {
      name: options?.name ?? "pool-manager",
      config,
      running: undefined,
      endpointLines: [],
      stop: undefined
    }
    // Added first, so it runs last: once the pool drained and the endpoints closed.
    yield* Effect.addFinalizer(() => stoppedLine(serving))
    const reloads = yield* ProcessMetrics.register
    // Started before the pool, so they are closed after it has drained.
    yield* startEndpoints(serving, worker)
    return yield* servePool(serving, options, reloads).pipe(
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
