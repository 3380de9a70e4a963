/**
 * A cluster primary (`NodeCluster.runPrimary`) run in the test process over
 * fixtures/cluster-worker-variants.ts, for the supervisor's tests of the less
 * common cases (NodeCluster.supervision, NodeCluster.addresses): its log
 * lines, what its processes wrote down, its announcement, and a clock the
 * test may hold still.
 */
import Cluster from "node:cluster"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Path from "node:path"
import { vi } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { NodeCluster } from "../../src/index.ts"
import { tempDir } from "./cliProcess.ts"
import { capturingLogs, type LogLine } from "./logs.ts"
import { until } from "./socketPair.ts"
import "./supervisorLoaded.ts"

export interface Event {
  readonly number: number
  readonly pid: number
  readonly event: string
}

export interface Announced {
  readonly address: Net.AddressInfo | string
  readonly mode: string
}

export interface Started {
  readonly fiber: Fiber.Fiber<never, unknown>
  readonly lines: Array<LogLine>
  readonly events: () => ReadonlyArray<Event>
  readonly listening: Deferred.Deferred<Announced>
  readonly dir: string
}

/**
 * Points node:cluster's forks at a fixture worker (call in `beforeAll`):
 * `cluster-worker.ts` for the common cases, `cluster-worker-variants.ts` for
 * the rarer ones.
 */
export const setupFixture = (fixture: "cluster-worker.ts" | "cluster-worker-variants.ts") =>
  Cluster.setupPrimary({ exec: Path.join(import.meta.dirname, "..", "fixtures", fixture), execArgv: [] })

/** Kills every process left (call in `afterAll`). */
export const killLeftovers = () => {
  for (const worker of Object.values(Cluster.workers ?? {})) worker?.process.kill("SIGKILL")
}

const fixtureEnv = ["FIXTURE_BEHAVIOUR", "FIXTURE_LISTEN", "FIXTURE_LATE", "FIXTURE_SECOND", "FIXTURE_OWN_PORT"]

/**
 * Starts a primary over the fixture, forked with `env` (the `FIXTURE_*`
 * variables; the others are cleared); the fiber is interrupted (stopping the
 * cluster) when the test's scope closes, whatever the test did.
 */
export const start = (
  env: Readonly<Record<string, string>>,
  options: Omit<NodeCluster.PrimaryOptions, "onListening">
) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const eventsFile = Path.join(dir, "events")
    Fs.writeFileSync(eventsFile, "")
    for (const name of [...fixtureEnv, "FIXTURE_SLOW_STOP"]) delete process.env[name]
    // Cluster.fork copies the environment at each fork, replacements' too.
    Object.assign(process.env, { FIXTURE_EVENTS: eventsFile }, env)
    const lines: Array<LogLine> = []
    const listening = yield* Deferred.make<Announced>()
    const fiber = yield* Effect.acquireRelease(
      NodeCluster.runPrimary({
        ...options,
        onListening: (address, mode) => Deferred.succeed(listening, { address, mode }).pipe(Effect.asVoid)
      }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)), Effect.forkDetach),
      (fiber) => Fiber.interrupt(fiber)
    )
    const events = () =>
      Fs.readFileSync(eventsFile, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => {
          const [number, pid, ...rest] = line.split(" ")
          return { number: Number(number), pid: Number(pid), event: rest.join(" ") }
        })
    return { fiber, lines, events, listening, dir } satisfies Started
  })

/** `until`, bounded for what child processes do: they start, and answer, slower on a loaded machine. */
export const eventually = (condition: () => boolean, what: string) => until(condition, what, "10 seconds")

export const messages = (lines: ReadonlyArray<LogLine>) => lines.map((line) => line.message)

export const eventsOf = (started: Started, number: number, prefix: string) =>
  started.events().filter((each) => each.number === number && each.event.startsWith(prefix))

/** The primary's log line about a process that exited, once logged. */
export const exitLine = (started: Started, number: number, pid: number) =>
  Effect.gen(function* () {
    const find = () => started.lines.find((line) => line.message.startsWith(`process ${number} (pid ${pid}) exited`))
    yield* eventually(() => find() !== undefined, `the exit of pid ${pid} logged`)
    return find()!
  })

/** The metrics server's base URL the primary logged. */
export const metricsUrl = (started: Started) => {
  const line = started.lines.find((each) => /metrics at http/.test(each.message))
  return /at (http:\/\/\S+)\/metrics/.exec(line?.message ?? "")?.[1] ?? "no metrics line"
}

/**
 * `Date.now` held at the value the test sets (the primary's record of when
 * a process started, listened and exited), until the scope closes; real
 * time before the first `set`.
 */
export const heldClock = Effect.acquireRelease(
  Effect.sync(() => {
    const real = Date.now.bind(Date)
    let held: number | undefined
    const spy = vi.spyOn(Date, "now").mockImplementation(() => held ?? real())
    const set = (millis: number) => {
      held = millis
    }
    return { set, real, spy }
  }),
  ({ spy }) => Effect.sync(() => spy.mockRestore())
)

/** `process.exitCode` as the stop left it, reset so the test runner's own exit is not changed. */
export const takeExitCode = () => {
  const code = process.exitCode
  process.exitCode = undefined
  return code
}
