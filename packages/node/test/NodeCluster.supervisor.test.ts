/**
 * The cluster's primary (internal/supervisor.ts) run in the test process, so
 * its code is what the tests judge (the command's cluster tests run it in a
 * child process): `Cluster.setupPrimary` points its forks at
 * fixtures/cluster-worker.ts, which listens as a worker does, answers
 * scrapes, and writes down what happens to it. Starting in both modes,
 * failing to start, replacing a process that crashed (with the config text
 * that last loaded), passing SIGHUP on, health and metrics, and stopping:
 * draining, a process failing its stop, one killed at the stop timeout; a
 * message node:cluster fails to send a process that died.
 */
import Cluster from "node:cluster"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { NodeCluster } from "../src/index.ts"
import * as Supervisor from "../src/internal/supervisor.ts"
import { get, tempDir } from "./utils/cliProcess.ts"
import { installedListener } from "./utils/signals.ts"
import {
  eventsOf,
  eventually,
  killLeftovers,
  messages,
  type Started,
  setupFixture,
  start as startPrimary,
  takeExitCode
} from "./utils/supervisedCluster.ts"
import { within } from "./utils/within.ts"

const start = (behaviour: string, options: Omit<NodeCluster.PrimaryOptions, "onListening">) =>
  startPrimary({ FIXTURE_BEHAVIOUR: behaviour }, options)

const hasEvent = (started: Started, number: number, prefix: string) => eventsOf(started, number, prefix).length > 0

// Each test forks processes: seconds under a loaded CI machine, not the default 5 s bound.
describe("NodeCluster supervisor", { timeout: 30_000 }, () => {
  beforeAll(() => setupFixture("cluster-worker.ts"))
  afterAll(killLeftovers)

  it("backs off 100 ms, doubling per failure in a row, up to 10 s", () => {
    assert.deepStrictEqual([0, 1, 2, 3, 7, 8, 100].map(Supervisor.backoff), [100, 100, 200, 400, 6400, 10_000, 10_000])
  })

  it.live("handoff: starts every process at once, announces once, serves health and metrics, and drains on stop", () =>
    Effect.gen(function* () {
      const started = yield* start("normal", {
        processes: 2,
        mode: "handoff",
        name: "fixture",
        metrics: { host: "127.0.0.1", port: 0 }
      })
      const { address, mode } = yield* within(
        Deferred.await(started.listening),
        "10 seconds",
        "every process to listen"
      )
      assert.strictEqual(mode, "handoff")
      assert.isTrue(typeof address !== "string" && address.port > 0 && address.address === "127.0.0.1")
      const starts = started.events().filter((each) => each.event.startsWith("start"))
      assert.deepStrictEqual(starts.map((each) => [each.number, each.event]).sort(), [
        [1, "start mode=handoff port=- config=-"],
        [2, "start mode=handoff port=- config=-"]
      ])
      const announced = started.lines.filter((line) => line.message.includes("processes listening"))
      assert.deepStrictEqual(messages(announced), [
        `fixture primary: 2 processes listening on 127.0.0.1:${(address as Net.AddressInfo).port} (handoff)`
      ])
      assert.deepStrictEqual(announced[0]?.annotations.processes, 2)
      assert.deepStrictEqual(announced[0]?.annotations.mode, "handoff")

      const metricsLine = started.lines.find((line) => line.message.startsWith("fixture metrics at "))
      const url = /at (http:\/\/\S+)\/metrics/.exec(metricsLine?.message ?? "")?.[1]
      assert.isDefined(url, "the primary logs its metrics address")
      const health = yield* get(`${url}/healthz`)
      assert.deepStrictEqual(health, { status: 200, body: "ok: 2 of 2 processes serving\n" })
      const metrics = yield* get(`${url}/metrics`)
      assert.include(metrics.body, "pool_processes 2")
      assert.include(metrics.body, 'pool_process_up{process="1"} 1')
      assert.include(metrics.body, 'pool_process_up{process="2"} 1')
      assert.include(metrics.body, 'pool_process_restarts_total{process="2"} 0')

      yield* Fiber.interrupt(started.fiber)
      assert.isTrue(hasEvent(started, 1, "sigterm") && hasEvent(started, 2, "sigterm"), "both got SIGTERM")
      const stopping = messages(started.lines).filter((message) => message.includes("stop"))
      assert.strictEqual(stopping.length, 2, stopping.join("\n"))
      assert.strictEqual(stopping[0], "fixture primary: stopping 2 processes, waiting up to 40s")
      assert.match(stopping[1] ?? "", /^fixture primary: stopped 2 processes in \d+ms$/)
      assert.strictEqual(takeExitCode(), undefined)
      // node:cluster forgets a worker once both its exit and its channel's disconnect came, in either order.
      yield* eventually(() => Object.keys(Cluster.workers ?? {}).length === 0, "node:cluster to forget both workers")
    }).pipe(Effect.scoped)
  )

  it.live("reuseport: the first process binds alone, the others and replacements get its port", () =>
    Effect.gen(function* () {
      const started = yield* start("normal", { processes: 2, mode: "reuseport" })
      const { address, mode } = yield* within(
        Deferred.await(started.listening),
        "10 seconds",
        "every process to listen"
      )
      assert.strictEqual(mode, "reuseport")
      const port = (address as Net.AddressInfo).port
      const starts = started.events().filter((each) => each.event.startsWith("start"))
      assert.deepStrictEqual(
        starts.map((each) => [each.number, each.event]),
        [
          [1, "start mode=reuseport port=- config=-"],
          [2, `start mode=reuseport port=${port} config=-`]
        ]
      )
      assert.isTrue(hasEvent(started, 2, `listening ${port}`))
      // A replacement binds the same port.
      process.kill(starts[0]!.pid, "SIGUSR2")
      yield* eventually(
        () => started.events().filter((each) => each.number === 1 && each.event.startsWith("listening")).length === 2,
        "process 1's replacement to listen"
      )
      assert.deepStrictEqual(
        started
          .events()
          .filter((each) => each.number === 1 && each.event.startsWith("start"))
          .map((each) => each.event),
        ["start mode=reuseport port=- config=-", `start mode=reuseport port=${port} config=-`]
      )
    }).pipe(Effect.scoped)
  )

  it.live("a process that exits before any listened stops the cluster with ClusterError", () =>
    Effect.gen(function* () {
      const started = yield* start("exit-before-listen", { processes: 3, mode: "reuseport" })
      const error = yield* within(Effect.flip(Fiber.join(started.fiber)), "10 seconds", "the cluster to fail")
      const pid = started.events()[0]?.pid
      assert.instanceOf(error, NodeCluster.ClusterError)
      assert.strictEqual(error.message, `process 1 (pid ${pid}) exited with code 3 before listening`)
      // The others wait for the first one's port: none was forked.
      assert.deepStrictEqual(
        started.events().map((each) => each.number),
        [1]
      )
    }).pipe(Effect.scoped)
  )

  it.live("replaces a process that crashed while serving, backing off, with the config text that last loaded", () =>
    Effect.gen(function* () {
      const before = process.listeners("SIGHUP")
      const dir = yield* tempDir
      const configPath = Path.join(dir, "config.yaml")
      Fs.writeFileSync(configPath, "good")
      const started = yield* start("normal", {
        processes: 1,
        mode: "handoff",
        name: "fixture",
        metrics: { host: "127.0.0.1", port: 0 },
        configFile: {
          path: configPath,
          check: (text) => (text.includes("bad") ? Effect.fail({ message: "the text is bad" }) : Effect.void)
        }
      })
      yield* within(Deferred.await(started.listening), "10 seconds", "every process to listen")
      const starts = () => started.events().filter((each) => each.event.startsWith("start"))
      assert.strictEqual(starts()[0]?.event, "start mode=handoff port=- config=good")

      // A file gone or broken on disk is logged, and SIGHUP still reaches the processes.
      const sighup = installedListener("SIGHUP", before)
      const passedOn = () => messages(started.lines).filter((message) => message.includes("SIGHUP passed on"))
      const received = () => started.events().filter((each) => each.event === "sighup").length
      Fs.rmSync(configPath)
      sighup()
      yield* eventually(() => passedOn().length === 1, "the first pass-on logged")
      // Received before the next is sent: two SIGHUPs pending at once in a process are delivered as one.
      yield* eventually(() => received() === 1, "the first SIGHUP received")
      Fs.writeFileSync(configPath, "bad")
      sighup()
      yield* eventually(() => passedOn().length === 2, "the second pass-on logged")
      yield* eventually(() => received() === 2, "two SIGHUPs")
      assert.deepStrictEqual(passedOn(), [
        "fixture primary: SIGHUP passed on to 1 processes",
        "fixture primary: SIGHUP passed on to 1 processes"
      ])
      const problems = started.lines.filter((line) => line.message.startsWith("fixture primary, on SIGHUP"))
      assert.deepStrictEqual(
        problems.map((line) => line.level),
        ["Error", "Error"]
      )
      assert.match(
        problems[0]?.message ?? "",
        /^fixture primary, on SIGHUP: config file \S+config\.yaml: cannot read it \(ENOENT: .*\); new processes start with the last one that loaded$/
      )
      assert.strictEqual(
        problems[1]?.message,
        "fixture primary, on SIGHUP: the text is bad; new processes start with the last one that loaded"
      )

      // Two crashes in a row: 100 ms, then 200 ms, each replacement with the text that loaded.
      for (const [restart, delay] of [
        [1, "100ms"],
        [2, "200ms"]
      ] as const) {
        const crashed = starts().at(-1)!
        process.kill(crashed.pid, "SIGUSR2")
        yield* eventually(() => starts().length === restart + 1, `replacement ${restart}`)
        assert.strictEqual(starts().at(-1)?.event, "start mode=handoff port=- config=good")
        const line = started.lines.find((each) => each.message.startsWith(`process 1 (pid ${crashed.pid}) exited`))
        assert.match(
          line?.message ?? "",
          new RegExp(
            `^process 1 \\(pid ${crashed.pid}\\) exited with code 5 after serving \\S+; starting a new one in ${delay} ` +
              `\\(restart ${restart}, ${restart} in a row; 0 of 1 serving\\)$`
          )
        )
        assert.deepInclude(line?.annotations, { process: 1, restarts: restart, pid: crashed.pid })
        assert.strictEqual(line?.level, "Error")
        const replacement = starts().at(-1)!.pid
        yield* eventually(
          () => started.events().some((each) => each.pid === replacement && each.event.startsWith("listening")),
          "the replacement to listen"
        )
      }
      const metricsLine = started.lines.find((line) => line.message.startsWith("fixture metrics at "))
      const url = /at (http:\/\/\S+)\/metrics/.exec(metricsLine?.message ?? "")?.[1]
      const metrics = yield* get(`${url}/metrics`)
      assert.include(metrics.body, 'pool_process_restarts_total{process="1"} 2')
      // Announced once, at start, not again for a replacement.
      assert.strictEqual(messages(started.lines).filter((message) => message.includes("processes listening")).length, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a process that fails its stop makes the primary's exit code 1", () =>
    Effect.gen(function* () {
      const started = yield* start("fail-on-stop", { processes: 1, mode: "handoff" })
      yield* within(Deferred.await(started.listening), "10 seconds", "every process to listen")
      const pid = started.events()[0]?.pid
      yield* Fiber.interrupt(started.fiber)
      assert.strictEqual(takeExitCode(), 1)
      const line = started.lines.find((each) => each.message.startsWith("process 1"))
      assert.deepStrictEqual([line?.level, line?.message], ["Error", `process 1 (pid ${pid}) exited with code 2`])
    }).pipe(Effect.scoped)
  )

  it.live(
    "a message node:cluster cannot send a process (EPIPE: it died meanwhile) is logged, not the primary's end",
    () =>
      Effect.gen(function* () {
        const started = yield* start("normal", { processes: 1, mode: "handoff" })
        yield* within(Deferred.await(started.listening), "10 seconds", "every process to listen")
        const pid = started.events()[0]?.pid
        const worker = Object.values(Cluster.workers ?? {}).find((each) => each?.process.pid === pid)!
        // What node:cluster's ChildProcess emits when its answer to a listen meets a process already gone.
        const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" })
        worker.process.emit("error", epipe)
        const line = started.lines.find((each) => each.message.startsWith("process 1"))
        assert.deepStrictEqual(
          [line?.level, line?.message],
          ["Warn", `process 1 (pid ${pid}): a message to it failed: write EPIPE`]
        )
        assert.isUndefined(started.fiber.pollUnsafe(), "the primary runs on")
        yield* Fiber.interrupt(started.fiber)
        assert.strictEqual(takeExitCode(), undefined)
      }).pipe(Effect.scoped)
  )

  // Last: passing a stop signal on records it as this module copy's stop signal.
  it.live(
    "a process still running at the stop timeout is killed; health says stopping; a second signal is passed on",
    () =>
      Effect.gen(function* () {
        const started = yield* start("ignore-sigterm", {
          processes: 1,
          mode: "handoff",
          name: "fixture",
          stopTimeout: "3 seconds",
          metrics: { host: "127.0.0.1", port: 0 }
        })
        yield* within(Deferred.await(started.listening), "10 seconds", "every process to listen")
        const metricsLine = started.lines.find((line) => line.message.startsWith("fixture metrics at "))
        const url = /at (http:\/\/\S+)\/metrics/.exec(metricsLine?.message ?? "")?.[1]
        const before = process.listeners("SIGTERM")
        const stopping = yield* Effect.forkChild(Fiber.interrupt(started.fiber))
        yield* eventually(() => hasEvent(started, 1, "sigterm"), "process 1 to get SIGTERM")
        assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 503, body: "stopping\n" })
        installedListener("SIGTERM", before)()
        yield* eventually(
          () => started.events().filter((each) => each.event === "sigterm").length === 2,
          "the second SIGTERM passed on"
        )
        yield* Fiber.join(stopping)
        assert.strictEqual(takeExitCode(), 1)
        // The primary stops waiting at the kill; the process's exit is logged when node:cluster reports it.
        yield* eventually(
          () => started.lines.some((line) => line.message.includes("SIGKILL")),
          "the killed process's exit"
        )
        const errors = started.lines.filter((line) => line.level === "Error").map((line) => line.message)
        assert.deepStrictEqual(errors, [
          "fixture primary: processes still running after 3s; killed",
          `process 1 (pid ${started.events()[0]?.pid}) exited with signal SIGKILL`
        ])
      }).pipe(Effect.scoped)
  )
})
