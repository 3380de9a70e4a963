/**
 * The primary of `NodeCluster` (`runPrimary`): forks the processes, replaces
 * the ones that exit, serves the aggregated metrics and health, passes
 * signals on, and stops them all.
 *
 * Supervision: a process that exits while the cluster runs is replaced after
 * a backoff that doubles with each failure in a row (100 ms up to 10 s) and
 * starts again once a process served for longer than the cap; it is replaced
 * however often it fails. Only at start, while no process has ever listened,
 * does an exit stop the cluster: the command line itself is wrong then (a
 * port in use, a bad file), and retrying would only hide it. Each
 * replacement starts with the config file's text the primary last read
 * successfully, so a file left broken on disk cannot keep it from starting.
 */
import Cluster, { type Worker } from "node:cluster"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { aggregate, ClusterError, defaultMode, type Mode, type PrimaryOptions } from "../NodeCluster.ts"
import * as NodeMetricsServer from "../NodeMetricsServer.ts"
import type { ListenError } from "../NodeTcpServer.ts"
import * as Scrapes from "./clusterScrape.ts"
import * as ClusterStatus from "./clusterStatus.ts"
import * as ClusterWorker from "./clusterWorker.ts"
import { addressFields } from "./logFields.ts"
import * as PrimaryMetrics from "./primaryMetrics.ts"
import * as Signals from "./signals.ts"

/** The first delay before a replacement, and the most it grows to. */
export const backoffMin = 100
export const backoffMax = 10_000

/** The delay before the `failures`-th replacement in a row (1, 2, ...): 100 ms doubling, capped at 10 s. */
export const backoff = (failures: number): number => Math.min(backoffMax, backoffMin * 2 ** Math.max(0, failures - 1))

interface Slot {
  worker: Worker | undefined
  ready: boolean
  listenedAt: number
  /** Failures in a row: reset when a process served longer than `backoffMax`. */
  failures: number
  restarts: number
  timer: NodeJS.Timeout | undefined
}

/** What the primary keeps while it runs, shared by forking, the processes' events, stopping and SIGHUP. */
interface Primary {
  readonly options: PrimaryOptions
  readonly name: string
  readonly mode: Mode
  readonly slots: Map<number, Slot>
  /** Fails when a process exits before any listened: the cluster cannot start. */
  readonly failed: Deferred.Deferred<never, ClusterError>
  readonly allExited: Deferred.Deferred<void>
  /** Runs a log line from a node:cluster event, which comes outside any fiber. */
  readonly log: (effect: Effect.Effect<void>) => void
  stopping: boolean
  /** Whether "N processes listening" was logged: it is, once. */
  announced: boolean
  everListened: boolean
  /** Processes that exited badly while stopping, or had to be killed: the primary then exits with 1. */
  failures: number
  /** The last text of the config file that loaded: what a replacement starts with. */
  configText: string | undefined
  /** reuseport: the port the first process bound, given to the others (and to replacements). */
  sharedPort: number | undefined
  /** Whether the processes after the first were forked: they wait for the first one's port. */
  forkedAll: boolean
}

/** One forked process, as its events see it: its slot may hold a replacement by the time they come. */
interface Forked {
  readonly number: number
  readonly slot: Slot
  readonly worker: Worker
  readonly pid: number | undefined
  readonly forkedAt: number
}

// "80ms", "3.2s": short, and the same spelling as the flags.
const seconds = (millis: number) => (millis < 1000 ? `${Math.round(millis)}ms` : `${(millis / 1000).toFixed(1)}s`)

export const runPrimary = (options: PrimaryOptions): Effect.Effect<never, ClusterError | ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const primary = yield* makePrimary(options)
    yield* loadConfig(primary, "at start")
    // Started first so it is closed last: /healthz says 503 while the processes drain.
    if (options.metrics !== undefined) yield* serveMetrics(primary, options.metrics)
    yield* Effect.addFinalizer(() => stopAll(primary))
    // SIGHUP: the primary re-reads the config file (for the processes it will start), and every process reloads.
    yield* Signals.onSighup(passOnSighup(primary))
    yield* Effect.log(`${primary.name} primary (pid ${process.pid}): starting ${options.processes} processes`)
    for (let number = 1; number <= (primary.forkedAll ? options.processes : 1); number++) fork(primary, number)
    return yield* Deferred.await(primary.failed)
  })

const makePrimary = (options: PrimaryOptions): Effect.Effect<Primary> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const slots = new Map<number, Slot>()
    for (let number = 1; number <= options.processes; number++) {
      slots.set(number, { worker: undefined, ready: false, listenedAt: 0, failures: 0, restarts: 0, timer: undefined })
    }
    const mode = options.mode === undefined || options.mode === "auto" ? defaultMode() : options.mode
    return {
      options,
      name: options.name ?? "pool-manager",
      mode,
      slots,
      failed: yield* Deferred.make<never, ClusterError>(),
      allExited: yield* Deferred.make<void>(),
      log: (effect) => void Effect.runForkWith(context)(effect),
      stopping: false,
      announced: false,
      everListened: false,
      failures: 0,
      configText: undefined,
      sharedPort: undefined,
      // The hand-off needs no port from the first process: all start at once.
      forkedAll: mode === "handoff"
    }
  })

const running = (primary: Primary) => Array.from(primary.slots.values()).filter((slot) => slot.worker !== undefined)

const liveWorkers = (primary: Primary) =>
  Array.from(primary.slots).flatMap(([number, slot]) =>
    slot.worker === undefined ? [] : [[number, slot.worker] as const]
  )

const signalAll = (primary: Primary, signal: NodeJS.Signals) => {
  for (const slot of running(primary)) slot.worker?.process.kill(signal)
}

/** Reads the config file into `configText`; one that cannot be read or checked is logged and leaves it as it was. */
const loadConfig = (primary: Primary, why: string): Effect.Effect<void> => {
  const configFile = primary.options.configFile
  return configFile === undefined
    ? Effect.void
    : Effect.try({
        try: () => Fs.readFileSync(configFile.path, "utf8"),
        catch: (cause) => new Error(`config file ${configFile.path}: cannot read it (${(cause as Error).message})`)
      }).pipe(
        Effect.tap((text) => configFile.check?.(text) ?? Effect.void),
        Effect.tap((text) =>
          Effect.sync(() => {
            primary.configText = text
          })
        ),
        Effect.catch((error: { readonly message: string }) =>
          Effect.logError(
            `${primary.name} primary, ${why}: ${error.message}; new processes start with the last one that loaded`
          )
        ),
        Effect.asVoid
      )
}

/** The primary's metrics server: every process's metrics and status, asked over IPC, and the cluster's health. */
const serveMetrics = (
  primary: Primary,
  metrics: NonNullable<PrimaryOptions["metrics"]>
): Effect.Effect<void, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { options, slots } = primary
    // This cluster's own request ids and series: nothing is shared with another cluster in the process.
    const ask = Scrapes.makeAsk()
    const collectStatus = ClusterStatus.makeCollect()
    const ownMetrics = PrimaryMetrics.make({
      processes: options.processes,
      restarts: (number) => slots.get(number)?.restarts ?? 0
    })
    const scrapeAll = Effect.suspend(() =>
      Effect.forEach(liveWorkers(primary), ([number, worker]) => ask(worker, number), { concurrency: "unbounded" })
    ).pipe(Effect.map((answers) => answers.flatMap((answer) => (Option.isSome(answer) ? [answer.value] : []))))
    const server = yield* NodeMetricsServer.make({
      ...metrics,
      metrics: Effect.map(
        scrapeAll,
        (scrapes) => ownMetrics(scrapes.map((scrape) => scrape.process)) + aggregate(scrapes)
      ),
      status: Effect.suspend(() => collectStatus(liveWorkers(primary), options.processes)),
      // Healthy while one process serves: the others are being replaced, and the port is answered.
      health: Effect.suspend(() =>
        primary.stopping
          ? Effect.succeed({ healthy: false, detail: "stopping" })
          : Effect.map(scrapeAll, (scrapes) => {
              const serving = scrapes.filter((scrape) => scrape.running).length
              const detail = `${serving} of ${options.processes} processes serving`
              return { healthy: serving > 0, detail: serving === options.processes ? `ok: ${detail}` : detail }
            })
      )
    })
    const url = NodeMetricsServer.url(server.address)
    yield* Effect.log(`${primary.name} metrics at ${url}/metrics and /healthz, status page at ${url}/`)
  })

/** Forks the process of slot `number` (unless the cluster is stopping) and follows its events. */
const fork = (primary: Primary, number: number): void => {
  const slot = primary.slots.get(number)!
  slot.timer = undefined
  if (primary.stopping) return
  const env: Record<string, string> = {
    [ClusterWorker.processEnv]: String(number),
    [ClusterWorker.modeEnv]: primary.mode
  }
  if (primary.sharedPort !== undefined) env[ClusterWorker.portEnv] = String(primary.sharedPort)
  if (primary.configText !== undefined) env[ClusterWorker.configTextEnv] = primary.configText
  const worker = Cluster.fork(env)
  const forked: Forked = { number, slot, worker, pid: worker.process.pid, forkedAt: Date.now() }
  slot.worker = worker
  slot.ready = false
  // A hand-off listener is reported by node:cluster, a reuseport one by the process itself.
  worker.on("listening", (address) =>
    onListening(
      primary,
      forked,
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
    if (ClusterWorker.isListeningMessage(message)) onListening(primary, forked, message.address, "reuseport")
  })
  worker.on("exit", (code, signal) => onExit(primary, forked, code, signal))
  // node:cluster's own messages to a process (the answer to its listen, above all) fail with EPIPE when it died
  // meanwhile; unheard, that error would end the primary. Its exit, which follows, is what replaces it.
  worker.on("error", (error) =>
    primary.log(Effect.logWarning(`process ${number} (pid ${forked.pid}): a message to it failed: ${error.message}`))
  )
}

const onListening = (primary: Primary, forked: Forked, address: Net.AddressInfo | string, via: Mode): void => {
  const { slot, worker } = forked
  if (slot.worker !== worker || slot.ready) return
  slot.ready = true
  slot.listenedAt = Date.now()
  primary.everListened = true
  if (primary.mode === "reuseport" && primary.sharedPort === undefined && typeof address !== "string") {
    primary.sharedPort = address.port
  }
  const { options } = primary
  // The first process listens alone; the others start once its port is known.
  if (!primary.forkedAll && !primary.stopping) {
    primary.forkedAll = true
    for (let next = 2; next <= options.processes; next++) fork(primary, next)
  }
  const all = running(primary)
  if (primary.announced || all.some((each) => !each.ready) || all.length < options.processes) return
  primary.announced = true
  // node:cluster gives a hand-off process's address as null when it listens without a host (on every
  // interface, "::" or "0.0.0.0" as the process found them): the primary cannot tell which, so "*".
  const where =
    typeof address === "string"
      ? `unix:${address}`
      : `${address.address === "" ? "*" : address.address}:${address.port}`
  primary.log(
    Effect.log(`${primary.name} primary: ${options.processes} processes listening on ${where} (${via})`).pipe(
      Effect.annotateLogs({ ...addressFields(address), processes: options.processes, mode: via }),
      Effect.andThen(options.onListening?.(address, via) ?? Effect.void)
    )
  )
}

const onExit = (primary: Primary, forked: Forked, code: number | null, signal: string | null): void => {
  const { number, slot, worker, pid } = forked
  if (slot.worker === worker) slot.worker = undefined
  const how = code === null ? `signal ${signal}` : `code ${code}`
  if (primary.stopping) {
    // SIGTERM can arrive before a process has installed its handler.
    if (code !== 0 && signal !== "SIGTERM") {
      primary.failures++
      primary.log(Effect.logError(`process ${number} (pid ${pid}) exited with ${how}`))
    }
    if (running(primary).length === 0) Deferred.doneUnsafe(primary.allExited, Effect.void)
    return
  }
  if (!primary.everListened) {
    Deferred.doneUnsafe(
      primary.failed,
      Effect.fail(new ClusterError({ reason: `process ${number} (pid ${pid}) exited with ${how} before listening` }))
    )
    return
  }
  scheduleReplacement(primary, forked, how)
}

/** Forks a replacement for a process that exited while the cluster runs, after the backoff. */
const scheduleReplacement = (primary: Primary, forked: Forked, how: string): void => {
  const { number, slot, pid, forkedAt } = forked
  const now = Date.now()
  const served = slot.ready ? now - slot.listenedAt : 0
  slot.failures = served > backoffMax ? 1 : slot.failures + 1
  slot.restarts++
  const delay = backoff(slot.failures)
  const life = slot.ready
    ? `after serving ${seconds(served)}`
    : `${seconds(now - forkedAt)} after it started, before listening`
  const serving = running(primary).filter((each) => each.ready).length
  primary.log(
    Effect.logError(
      `process ${number} (pid ${pid}) exited with ${how} ${life}; starting a new one in ${seconds(delay)} ` +
        `(restart ${slot.restarts}, ${slot.failures} in a row; ${serving} of ${primary.options.processes} serving)`
    ).pipe(Effect.annotateLogs({ process: number, pid, restarts: slot.restarts, retryInMillis: delay }))
  )
  slot.timer = setTimeout(() => fork(primary, number), delay)
}

/** The finalizer: no more replacements; SIGTERM to every process, then SIGKILL to those still running at the timeout. */
const stopAll = (primary: Primary): Effect.Effect<void> =>
  Effect.suspend(() => {
    primary.stopping = true
    for (const slot of primary.slots.values()) {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
    }
    const count = running(primary).length
    if (count === 0) return Effect.void
    signalAll(primary, "SIGTERM")
    const { name } = primary
    const timeout = Duration.fromInputUnsafe(primary.options.stopTimeout ?? "40 seconds")
    const started = Date.now()
    const received = Signals.stopSignal()
    return Effect.gen(function* () {
      // Another signal to the primary is passed on too: it ends the processes' lame-duck period (--shutdown-delay).
      yield* Signals.on(["SIGINT", "SIGTERM"], () => signalAll(primary, "SIGTERM"))
      yield* Effect.log(
        `${name} primary: stopping ${count} processes${received === undefined ? "" : ` on ${received.signal}`}, waiting up to ${Duration.format(timeout)}`
      ).pipe(Effect.annotateLogs({ signal: received?.signal ?? "none", stopTimeout: Duration.format(timeout) }))
      const done = yield* Effect.timeoutOption(Deferred.await(primary.allExited), timeout)
      if (Option.isNone(done)) {
        primary.failures++
        signalAll(primary, "SIGKILL")
        yield* Effect.logError(`${name} primary: processes still running after ${Duration.format(timeout)}; killed`)
      }
      if (primary.failures > 0) process.exitCode = 1
      yield* Effect.log(`${name} primary: stopped ${count} processes in ${seconds(Date.now() - started)}`)
    }).pipe(Effect.scoped)
  })

const passOnSighup = (primary: Primary): Effect.Effect<void> =>
  loadConfig(primary, "on SIGHUP").pipe(
    Effect.andThen(
      Effect.suspend(() => {
        signalAll(primary, "SIGHUP")
        return Effect.log(`${primary.name} primary: SIGHUP passed on to ${running(primary).length} processes`)
      })
    )
  )
