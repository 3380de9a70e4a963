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

// "80ms", "3.2s": short, and the same spelling as the flags.
const seconds = (millis: number) => (millis < 1000 ? `${Math.round(millis)}ms` : `${(millis / 1000).toFixed(1)}s`)

export const runPrimary = (options: PrimaryOptions): Effect.Effect<never, ClusterError | ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "pool-manager"
    const context = yield* Effect.context<never>()
    const log = (effect: Effect.Effect<void>) => void Effect.runForkWith(context)(effect)
    const slots = new Map<number, Slot>()
    for (let number = 1; number <= options.processes; number++) {
      slots.set(number, { worker: undefined, ready: false, listenedAt: 0, failures: 0, restarts: 0, timer: undefined })
    }
    const failed = yield* Deferred.make<never, ClusterError>()
    const allExited = yield* Deferred.make<void>()
    let stopping = false
    let announced = false
    let everListened = false
    let failures = 0
    const running = () => Array.from(slots.values()).filter((slot) => slot.worker !== undefined)

    // The last text of the config file that loaded: what a replacement starts with.
    const configFile = options.configFile
    let configText: string | undefined
    const loadConfig = (why: string) =>
      configFile === undefined
        ? Effect.void
        : Effect.try({
            try: () => Fs.readFileSync(configFile.path, "utf8"),
            catch: (cause) => new Error(`config file ${configFile.path}: cannot read it (${(cause as Error).message})`)
          }).pipe(
            Effect.tap((text) => configFile.check?.(text) ?? Effect.void),
            Effect.tap((text) =>
              Effect.sync(() => {
                configText = text
              })
            ),
            Effect.catch((error: { readonly message: string }) =>
              Effect.logError(
                `${name} primary, ${why}: ${error.message}; new processes start with the last one that loaded`
              )
            ),
            Effect.asVoid
          )
    yield* loadConfig("at start")

    const liveWorkers = () =>
      Array.from(slots).flatMap(([number, slot]) => (slot.worker === undefined ? [] : [[number, slot.worker] as const]))
    // This cluster's own request ids and series: nothing is shared with another cluster in the process.
    const ask = Scrapes.makeAsk()
    const collectStatus = ClusterStatus.makeCollect()
    const ownMetrics = PrimaryMetrics.make({
      processes: options.processes,
      restarts: (number) => slots.get(number)?.restarts ?? 0
    })
    const scrapeAll = Effect.suspend(() =>
      Effect.forEach(liveWorkers(), ([number, worker]) => ask(worker, number), { concurrency: "unbounded" })
    ).pipe(Effect.map((answers) => answers.flatMap((answer) => (Option.isSome(answer) ? [answer.value] : []))))

    // Started first so it is closed last: /healthz says 503 while the processes drain.
    if (options.metrics !== undefined) {
      const server = yield* NodeMetricsServer.make({
        ...options.metrics,
        metrics: Effect.map(
          scrapeAll,
          (scrapes) => ownMetrics(scrapes.map((scrape) => scrape.process)) + aggregate(scrapes)
        ),
        status: Effect.suspend(() => collectStatus(liveWorkers(), options.processes)),
        // Healthy while one process serves: the others are being replaced, and the port is answered.
        health: Effect.suspend(() =>
          stopping
            ? Effect.succeed({ healthy: false, detail: "stopping" })
            : Effect.map(scrapeAll, (scrapes) => {
                const serving = scrapes.filter((scrape) => scrape.running).length
                const detail = `${serving} of ${options.processes} processes serving`
                return { healthy: serving > 0, detail: serving === options.processes ? `ok: ${detail}` : detail }
              })
        )
      })
      const url = NodeMetricsServer.url(server.address)
      yield* Effect.log(`${name} metrics at ${url}/metrics and /healthz, status page at ${url}/`)
    }

    const mode = options.mode === undefined || options.mode === "auto" ? defaultMode() : options.mode
    // reuseport: the port the first process bound, given to the others (and to replacements).
    let sharedPort: number | undefined
    // The hand-off needs no port from the first process: all start at once.
    let forkedAll = mode === "handoff"

    const fork = (number: number) => {
      const slot = slots.get(number)!
      slot.timer = undefined
      if (stopping) return
      const env: Record<string, string> = { [ClusterWorker.processEnv]: String(number), [ClusterWorker.modeEnv]: mode }
      if (sharedPort !== undefined) env[ClusterWorker.portEnv] = String(sharedPort)
      if (configText !== undefined) env[ClusterWorker.configTextEnv] = configText
      const worker = Cluster.fork(env)
      const pid = worker.process.pid
      const forkedAt = Date.now()
      slot.worker = worker
      slot.ready = false
      const onListening = (address: Net.AddressInfo | string, via: Mode) => {
        if (slot.worker !== worker || slot.ready) return
        slot.ready = true
        slot.listenedAt = Date.now()
        everListened = true
        if (mode === "reuseport" && sharedPort === undefined && typeof address !== "string") sharedPort = address.port
        // The first process listens alone; the others start once its port is known.
        if (!forkedAll && !stopping) {
          forkedAll = true
          for (let next = 2; next <= options.processes; next++) fork(next)
        }
        if (announced || running().some((each) => !each.ready) || running().length < options.processes) return
        announced = true
        const where = typeof address === "string" ? `unix:${address}` : `${address.address}:${address.port}`
        log(
          Effect.log(`${name} primary: ${options.processes} processes listening on ${where} (${via})`).pipe(
            Effect.annotateLogs({ ...addressFields(address), processes: options.processes, mode: via }),
            Effect.andThen(options.onListening?.(address, via) ?? Effect.void)
          )
        )
      }
      // A hand-off listener is reported by node:cluster, a reuseport one by the process itself.
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
        if (slot.worker === worker) slot.worker = undefined
        const how = code === null ? `signal ${signal}` : `code ${code}`
        if (stopping) {
          // SIGTERM can arrive before a process has installed its handler.
          if (code !== 0 && signal !== "SIGTERM") {
            failures++
            log(Effect.logError(`process ${number} (pid ${pid}) exited with ${how}`))
          }
          if (running().length === 0) Deferred.doneUnsafe(allExited, Effect.void)
          return
        }
        if (!everListened) {
          Deferred.doneUnsafe(
            failed,
            Effect.fail(
              new ClusterError({ reason: `process ${number} (pid ${pid}) exited with ${how} before listening` })
            )
          )
          return
        }
        const now = Date.now()
        const served = slot.ready ? now - slot.listenedAt : 0
        slot.failures = served > backoffMax ? 1 : slot.failures + 1
        slot.restarts++
        const delay = backoff(slot.failures)
        const life = slot.ready
          ? `after serving ${seconds(served)}`
          : `${seconds(now - forkedAt)} after it started, before listening`
        log(
          Effect.logError(
            `process ${number} (pid ${pid}) exited with ${how} ${life}; starting a new one in ${seconds(delay)} ` +
              `(restart ${slot.restarts}, ${slot.failures} in a row; ${running().filter((each) => each.ready).length} of ${options.processes} serving)`
          ).pipe(Effect.annotateLogs({ process: number, pid, restarts: slot.restarts, retryInMillis: delay }))
        )
        slot.timer = setTimeout(() => fork(number), delay)
      })
    }

    const signalAll = (signal: NodeJS.Signals) => {
      for (const slot of running()) slot.worker?.process.kill(signal)
    }

    const stopAll = Effect.suspend(() => {
      stopping = true
      for (const slot of slots.values()) {
        if (slot.timer !== undefined) clearTimeout(slot.timer)
        slot.timer = undefined
      }
      const count = running().length
      if (count === 0) return Effect.void
      signalAll("SIGTERM")
      const timeout = Duration.fromInputUnsafe(options.stopTimeout ?? "40 seconds")
      const started = Date.now()
      const received = Signals.stopSignal()
      return Effect.gen(function* () {
        // Another signal to the primary is passed on too: it ends the processes' lame-duck period (--shutdown-delay).
        yield* Signals.on(["SIGINT", "SIGTERM"], () => signalAll("SIGTERM"))
        yield* Effect.log(
          `${name} primary: stopping ${count} processes${received === undefined ? "" : ` on ${received.signal}`}, waiting up to ${Duration.format(timeout)}`
        ).pipe(Effect.annotateLogs({ signal: received?.signal ?? "none", stopTimeout: Duration.format(timeout) }))
        const done = yield* Effect.timeoutOption(Deferred.await(allExited), timeout)
        if (Option.isNone(done)) {
          failures++
          signalAll("SIGKILL")
          yield* Effect.logError(`${name} primary: processes still running after ${Duration.format(timeout)}; killed`)
        }
        if (failures > 0) process.exitCode = 1
        yield* Effect.log(`${name} primary: stopped ${count} processes in ${seconds(Date.now() - started)}`)
      }).pipe(Effect.scoped)
    })

    yield* Effect.addFinalizer(() => stopAll)
    // SIGHUP: the primary re-reads the config file (for the processes it will start), and every process reloads.
    yield* Signals.onSighup(
      loadConfig("on SIGHUP").pipe(
        Effect.andThen(
          Effect.suspend(() => {
            signalAll("SIGHUP")
            return Effect.log(`${name} primary: SIGHUP passed on to ${running().length} processes`)
          })
        )
      )
    )
    yield* Effect.log(`${name} primary (pid ${process.pid}): starting ${options.processes} processes`)
    for (let number = 1; number <= (forkedAll ? options.processes : 1); number++) fork(number)
    return yield* Deferred.await(failed)
  })
