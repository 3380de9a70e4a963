/**
 * `--processes` above 1, in this process (internal/cliCommand.ts): the
 * primary starts its processes (forks of fixtures/cluster-worker.ts) in the
 * mode `--cluster-mode` names, reads no config file without `--config`,
 * checks the file it re-reads on SIGHUP, and a process that exits before
 * listening is a user error. And the command in a cluster's process (this
 * process made to look like one): it serves rather than starting a primary
 * again, from the config text its primary last loaded, not the file on disk.
 * NodeCli.command.test.ts has the modes `auto` picks.
 */
import Cluster from "node:cluster"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as ClusterWorker from "../src/internal/clusterWorker.ts"
import { configFile, tempDir } from "./utils/cliProcess.ts"
import { failureOf, runCommand } from "./utils/command.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"
import "./utils/supervisorLoaded.ts"

/** The command with `--processes 2` and `args`, its processes behaving as `behaviour` says, and their events. */
const primary = (args: ReadonlyArray<string>, behaviour = "normal") =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const events = Path.join(dir, "events")
    Fs.writeFileSync(events, "")
    process.env.FIXTURE_EVENTS = events
    process.env.FIXTURE_BEHAVIOUR = behaviour
    const command = runCommand(["--processes", "2", ...args], { name: "clustered" })
    const starts = () =>
      Fs.readFileSync(events, "utf8")
        .split("\n")
        .filter((line) => line.includes(" start "))
    return { ...command, dir, starts }
  })

/** This process as a cluster's process number 1 whose primary last loaded `configText`, until the scope closes. */
const asClusterProcess = (configText: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const cluster = Cluster as { isWorker: boolean }
      const saved = { isWorker: cluster.isWorker, env: { ...process.env } }
      cluster.isWorker = true
      process.env[ClusterWorker.processEnv] = "1"
      process.env[ClusterWorker.configTextEnv] = configText
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        ;(Cluster as { isWorker: boolean }).isWorker = saved.isWorker
        for (const name of [ClusterWorker.processEnv, ClusterWorker.configTextEnv]) {
          if (saved.env[name] === undefined) delete process.env[name]
          else process.env[name] = saved.env[name]
        }
      })
  )

// Forked processes: seconds under a loaded CI machine, not the default 5 s bound.
describe("NodeCli primary", { timeout: 30_000 }, () => {
  beforeAll(() => {
    Cluster.setupPrimary({ exec: Path.join(import.meta.dirname, "fixtures", "cluster-worker.ts"), execArgv: [] })
  })

  it.live("--cluster-mode handoff on a TCP port hands connections over; without --config no file is read", () =>
    Effect.gen(function* () {
      const started = yield* primary(["--port", "0", "--cluster-mode", "handoff"])
      const fiber = yield* Effect.forkChild(started.effect)
      yield* until(() => started.starts().length === 2, "two processes started", "10 seconds")
      for (const start of started.starts()) assert.match(start, / start mode=handoff port=- config=-$/)
      yield* Fiber.interrupt(fiber)
      const errors = started.out.filter((line) => line.includes("ERROR"))
      assert.deepStrictEqual(errors, [])
    }).pipe(Effect.scoped)
  )

  it.live("on SIGHUP the primary checks the file it re-reads, and logs one that does not pass", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 4\n")
      const before = process.listeners("SIGHUP")
      const started = yield* primary(["--port", "0", "--config", file])
      const fiber = yield* Effect.forkChild(started.effect)
      yield* until(() => started.starts().length === 2, "two processes started", "10 seconds")
      Fs.writeFileSync(file, "maxWorkersCount: -1\n")
      installedListener("SIGHUP", before)()
      const refused = `clustered primary, on SIGHUP: config file ${file}: `
      yield* until(() => started.out.some((line) => line.includes(refused)), "the refused file's line")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("a process that exits before listening stops the primary with a user error", () =>
    Effect.gen(function* () {
      const started = yield* primary(["--port", "0"], "exit-before-listen")
      const error = yield* failureOf(started.effect, "a primary whose process exits")
      assert.strictEqual(error._tag, "UserError")
      assert.match(error.message, /^process \d \(pid \d+\) exited with code 3 before listening$/)
    }).pipe(Effect.scoped)
  )

  it.live("in a cluster's process the command serves, from the config text its primary last loaded", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 9\n")
      yield* asClusterProcess("maxWorkersCount: 5\n")
      const started = yield* primary(["--host", "127.0.0.1", "--port", "0", "--config", file])
      const fiber = yield* Effect.forkChild(started.effect)
      yield* until(() => started.out.some((line) => line.includes("clustered listening on")), "the listening line")
      const listening = started.out.find((line) => line.includes("clustered listening on")) ?? ""
      assert.include(listening, " max-workers=5 ")
      assert.deepStrictEqual(started.starts(), [], "no process forked")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped)
  )
})
