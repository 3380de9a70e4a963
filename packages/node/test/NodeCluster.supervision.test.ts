/**
 * The cluster's primary (internal/supervisor.ts) in the test process, over
 * fixtures/cluster-worker-variants.ts, in the cases NodeCluster.supervisor
 * leaves out: its defaults (name, mode, no metrics server), a config file
 * without a check or missing at start, the hand-off mode starting every
 * process at once and announcing once all listen, how many serve when one
 * crashes, replacements that die before listening (the slot left empty:
 * health and metrics without it, the pending replacement dropped at stop),
 * how long a process served (a clock held still: a second process listening
 * later changes nothing, the backoff starts again after 10 s of serving),
 * scrapes asked of every process at once, a process not serving, and the
 * stop: waiting for the slowest, a process SIGTERM kills, the signal that
 * started it.
 */
import * as Fs from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { NodeCluster } from "../src/index.ts"
import * as Signals from "../src/internal/signals.ts"
import { get } from "./utils/cliProcess.ts"
import { referencedTimers } from "./utils/resources.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"
import {
  eventsOf,
  eventually,
  exitLine,
  heldClock,
  killLeftovers,
  messages,
  metricsUrl,
  setupFixture,
  start,
  takeExitCode
} from "./utils/supervisedCluster.ts"
import { within } from "./utils/within.ts"

const listened = <A, E>(started: { readonly listening: Deferred.Deferred<A, E> }) =>
  within(Deferred.await(started.listening), "10 seconds", "every process to listen")

/** The pid of process `number`'s latest start. */
const latest = (started: Parameters<typeof eventsOf>[0], number: number) =>
  eventsOf(started, number, "start").at(-1)!.pid

/** GET `url`, waiting up to 15 s: long enough to see an answer come late. */
const slowGet = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(15_000) })
    return { status: response.status, body: await response.text() }
  })

/** The metrics server's URL of a started, listening cluster of `processes` that behave as `behaviour`. */
const metricsOf = (behaviour: string, processes: number) =>
  Effect.gen(function* () {
    const started = yield* start(
      { FIXTURE_BEHAVIOUR: behaviour },
      { processes, mode: "handoff", name: "fixture", metrics: { host: "127.0.0.1", port: 0 } }
    )
    yield* listened(started)
    return metricsUrl(started)
  })

describe("NodeCluster supervision", { timeout: 30_000 }, () => {
  beforeAll(() => setupFixture("cluster-worker-variants.ts"))
  afterAll(killLeftovers)

  it.live("by default: named pool-manager, auto mode (the platform's), no metrics server", () =>
    Effect.gen(function* () {
      for (const mode of [undefined, "auto"] as const) {
        const started = yield* start({}, { processes: 1, ...(mode === undefined ? {} : { mode }) })
        const announced = yield* listened(started)
        assert.strictEqual(announced.mode, NodeCluster.defaultMode())
        assert.strictEqual(
          eventsOf(started, 1, "start")[0]?.event,
          `start mode=${NodeCluster.defaultMode()} port=- config=-`
        )
        assert.strictEqual(
          messages(started.lines)[0],
          `pool-manager primary (pid ${process.pid}): starting 1 processes`
        )
        assert.isFalse(
          messages(started.lines).some((message) => message.includes("metrics at")),
          messages(started.lines).join("\n")
        )
        yield* Fiber.interrupt(started.fiber)
      }
    }).pipe(Effect.scoped)
  )

  it.live("a config file missing at start is logged; one without a check loads as it is", () =>
    Effect.gen(function* () {
      const missing = yield* start(
        {},
        { processes: 1, mode: "handoff", name: "fixture", configFile: { path: "/nonexistent/pool.yaml" } }
      )
      yield* listened(missing)
      const problem = missing.lines.find((line) => line.level === "Error")
      assert.match(
        problem?.message ?? "",
        /^fixture primary, at start: config file \/nonexistent\/pool\.yaml: cannot read it \(ENOENT: .*\); new processes start with the last one that loaded$/
      )
      assert.strictEqual(eventsOf(missing, 1, "start")[0]?.event, "start mode=handoff port=- config=-")
      yield* Fiber.interrupt(missing.fiber)

      const path = `${missing.dir}/pool.yaml`
      Fs.writeFileSync(path, "good")
      const unchecked = yield* start({}, { processes: 1, mode: "handoff", configFile: { path } })
      yield* listened(unchecked)
      assert.strictEqual(eventsOf(unchecked, 1, "start")[0]?.event, "start mode=handoff port=- config=good")
    }).pipe(Effect.scoped)
  )

  it.live("hand-off: every process starts at once, the announcement waits for all, a crash says how many serve", () =>
    Effect.gen(function* () {
      // Process 1 listens two seconds late: process 2 starts, listens and crashes meanwhile.
      const started = yield* start({ FIXTURE_LATE: "1:2000" }, { processes: 2, mode: "handoff", name: "fixture" })
      yield* eventually(() => eventsOf(started, 2, "listening").length === 1, "process 2 to listen")
      assert.deepStrictEqual(eventsOf(started, 1, "listening"), [], "process 1 listens late")
      assert.strictEqual(eventsOf(started, 2, "start").length, 1, "process 2 started before process 1 listened")
      yield* Effect.sleep("500 millis")
      const first = latest(started, 2)
      process.kill(first, "SIGUSR2")
      const line = yield* exitLine(started, 2, first)
      assert.match(line.message, /; starting a new one in 100ms \(restart 1, 1 in a row; 0 of 2 serving\)$/)

      yield* listened(started)
      // Announced once both listen: process 1's listening is written down as it tells the primary.
      yield* until(
        () => eventsOf(started, 1, "listening").length === 1,
        "process 1 to have listened at the announcement",
        "1 second"
      )
      const replacement = latest(started, 2)
      assert.notStrictEqual(replacement, first)
      process.kill(replacement, "SIGUSR2")
      const again = yield* exitLine(started, 2, replacement)
      assert.match(again.message, /; starting a new one in 200ms \(restart 2, 2 in a row; 1 of 2 serving\)$/)
    }).pipe(Effect.scoped)
  )

  it.live("replacements dying before they listen back off; the empty slot is unhealthy, and dropped at stop", () =>
    Effect.gen(function* () {
      const started = yield* start(
        {},
        {
          processes: 1,
          mode: "handoff",
          name: "fixture",
          metrics: { host: "127.0.0.1", port: 0 }
        }
      )
      yield* listened(started)
      process.env.FIXTURE_BEHAVIOUR = "exit-before-listen"
      process.kill(latest(started, 1), "SIGUSR2")
      const waiting = () =>
        started.lines.some((line) =>
          line.message.endsWith("starting a new one in 1.6s (restart 5, 5 in a row; 0 of 1 serving)")
        )
      yield* eventually(waiting, "the fifth replacement to be 1.6 s away")
      const second = started.lines.find((line) => line.message.includes("(restart 2,"))
      assert.match(
        second?.message ?? "",
        /^process 1 \(pid \d+\) exited with code 3 \d+ms after it started, before listening; starting a new one in 200ms \(restart 2, 2 in a row; 0 of 1 serving\)$/
      )
      const url = metricsUrl(started)
      assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 503, body: "0 of 1 processes serving\n" })
      const metrics = yield* get(`${url}/metrics`)
      assert.strictEqual(metrics.status, 200)
      assert.include(metrics.body, 'pool_process_up{process="1"} 0')
      assert.include(metrics.body, 'pool_process_restarts_total{process="1"} 5')

      // The stop leaves no replacement pending: nothing keeps the primary's process alive afterwards.
      yield* Fiber.interrupt(started.fiber)
      assert.strictEqual(referencedTimers(), 0, "no timer left pending by the stop")
      assert.strictEqual(eventsOf(started, 1, "start").length, 5, "the fifth replacement never started")
    }).pipe(Effect.scoped)
  )

  it.live(
    "how long a process served, on a clock held still: a second server changes nothing; 10 s resets the backoff",
    () =>
      Effect.gen(function* () {
        const clock = yield* heldClock
        const at = clock.real()
        clock.set(at)
        // Each process opens a second server 300 ms after its first: node:cluster reports that one too.
        const started = yield* start({ FIXTURE_SECOND: "300" }, { processes: 1, mode: "handoff", name: "fixture" })
        yield* listened(started)
        // Held 200 ms on from the first listening: the second server's report would move "listened" there.
        let listenedAt = at
        clock.set(listenedAt + 200)
        const crash = (served: number, restart: number) =>
          Effect.gen(function* () {
            const pid = latest(started, 1)
            yield* eventually(
              () => started.events().some((each) => each.pid === pid && each.event.startsWith("second")),
              "the second server"
            )
            // node:cluster's report of it reaches the primary after the process wrote it down.
            yield* Effect.sleep("300 millis")
            clock.set(listenedAt + served)
            process.kill(pid, "SIGUSR2")
            const line = yield* exitLine(started, 1, pid)
            yield* eventually(
              () => eventsOf(started, 1, "listening").length === restart + 1,
              `replacement ${restart} to listen`
            )
            // The clock stays: the replacement listened at this time, whenever the primary hears of it.
            listenedAt += served
            return line.message.replace(/^process 1 \(pid \d+\) exited with code 5 /, "")
          })
        assert.strictEqual(
          yield* crash(1000, 1),
          "after serving 1.0s; starting a new one in 100ms (restart 1, 1 in a row; 0 of 1 serving)"
        )
        assert.strictEqual(
          yield* crash(10_000, 2),
          "after serving 10.0s; starting a new one in 200ms (restart 2, 2 in a row; 0 of 1 serving)"
        )
        assert.strictEqual(
          yield* crash(10_001, 3),
          "after serving 10.0s; starting a new one in 100ms (restart 3, 1 in a row; 0 of 1 serving)"
        )
      }).pipe(Effect.scoped)
  )

  it.live("every process is asked for its metrics and status at once; one not answering is down", () =>
    Effect.gen(function* () {
      // Three processes that answer nothing: each request gives up after 2 s, all together.
      const url = yield* metricsOf("mute", 3)
      for (const path of ["/metrics", "/stats.json"]) {
        const before = performance.now()
        const answer = yield* slowGet(`${url}${path}`)
        const took = performance.now() - before
        assert.isBelow(took, 4500, `${path} answered in ${Math.round(took)} ms, not 3 × 2 s`)
        if (path === "/metrics") {
          assert.strictEqual(answer.status, 200)
          for (const number of [1, 2, 3]) assert.include(answer.body, `pool_process_up{process="${number}"} 0`)
        } else {
          assert.strictEqual(answer.status, 503)
        }
      }
    }).pipe(Effect.scoped)
  )

  it.live("a process answering that it does not serve leaves the cluster unhealthy", () =>
    Effect.gen(function* () {
      const url = yield* metricsOf("not-running", 1)
      assert.deepStrictEqual(yield* get(`${url}/healthz`), {
        status: 503,
        body: "0 of 1 processes serving\n"
      })
    }).pipe(Effect.scoped)
  )

  it.live("a process's other messages are not its announcement", () =>
    Effect.gen(function* () {
      // It sends them at once, one with an address of port 1, and listens a second later.
      const started = yield* start(
        { FIXTURE_BEHAVIOUR: "chatty", FIXTURE_LATE: "1:1000" },
        { processes: 1, mode: "reuseport", name: "fixture" }
      )
      const { address } = yield* listened(started)
      const port = eventsOf(started, 1, "listening")[0]?.event
      assert.strictEqual(`listening ${(address as { port: number }).port}`, port)
      assert.isFalse(messages(started.lines).some((message) => message.includes(":1 (reuseport)")))
    }).pipe(Effect.scoped)
  )

  it.live("the stop waits for the slowest process; one that SIGTERM kills did not fail", () =>
    Effect.gen(function* () {
      const killed = yield* start(
        { FIXTURE_BEHAVIOUR: "no-sigterm-handler" },
        { processes: 1, mode: "handoff", name: "fixture" }
      )
      yield* listened(killed)
      yield* Fiber.interrupt(killed.fiber)
      assert.strictEqual(takeExitCode(), undefined)
      assert.deepStrictEqual(
        killed.lines.filter((line) => line.level === "Error").map((line) => line.message),
        []
      )

      const slow = yield* start({ FIXTURE_SLOW_STOP: "2" }, { processes: 2, mode: "handoff", name: "fixture" })
      yield* listened(slow)
      yield* Fiber.interrupt(slow.fiber)
      assert.strictEqual(eventsOf(slow, 2, "exiting").length, 1, "process 2 exited before the stop ended")
      const stopping = slow.lines.find((line) => line.message.startsWith("fixture primary: stopping"))
      assert.strictEqual(stopping?.message, "fixture primary: stopping 2 processes, waiting up to 40s")
      assert.deepInclude(stopping?.annotations, { signal: "none", stopTimeout: "40s" })
      const stopped = messages(slow.lines).find((message) => message.includes("stopped"))
      assert.match(stopped ?? "", /^fixture primary: stopped 2 processes in \d+\.\ds$/)
      assert.strictEqual(takeExitCode(), undefined)
    }).pipe(Effect.scoped)
  )

  // Last: the stop signal stays recorded in this module copy.
  it.live("a stop that a signal started says which", () =>
    Effect.gen(function* () {
      const started = yield* start({}, { processes: 1, mode: "handoff", name: "fixture", stopTimeout: "5 seconds" })
      yield* listened(started)
      const before = process.listeners("SIGTERM")
      const unsubscribe = Signals.subscribe("SIGTERM", () => {})
      yield* Effect.ensuring(
        Effect.sync(() => installedListener("SIGTERM", before)()),
        Effect.sync(unsubscribe)
      )
      yield* Fiber.interrupt(started.fiber)
      const stopping = started.lines.find((line) => line.message.startsWith("fixture primary: stopping"))
      assert.strictEqual(stopping?.message, "fixture primary: stopping 1 processes on SIGTERM, waiting up to 5s")
      assert.deepInclude(stopping?.annotations, { signal: "SIGTERM", stopTimeout: "5s" })
    }).pipe(Effect.scoped)
  )
})
