/**
 * Where the cluster says it listens (internal/supervisor.ts, in the test
 * process over fixtures/cluster-worker-variants.ts): in the hand-off mode
 * node:cluster reports each process's listener, and the announcement, its
 * fields and the `onListening` address follow it: IPv4, IPv6, no host
 * given, a unix socket. In the `reuseport` mode the port given to the
 * processes forked later is the first process's, whatever another one bound.
 */
import type * as Net from "node:net"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { tempDir } from "./utils/cliProcess.ts"
import {
  eventsOf,
  eventually,
  exitLine,
  killLeftovers,
  type Started,
  setupFixture,
  start
} from "./utils/supervisedCluster.ts"
import { within } from "./utils/within.ts"

const listened = (started: Started) =>
  within(Deferred.await(started.listening), "10 seconds", "every process to listen")

const announcement = (started: Started) => started.lines.find((line) => line.message.includes("processes listening"))

describe("NodeCluster addresses", { timeout: 30_000 }, () => {
  beforeAll(() => setupFixture("cluster-worker-variants.ts"))
  afterAll(killLeftovers)

  it.live.each([
    ["127.0.0.1", "IPv4"],
    ["::1", "IPv6"]
  ] as const)("hand-off on %s: announced with its host, port and family", ([host, family]) =>
    Effect.gen(function* () {
      const started = yield* start({ FIXTURE_LISTEN: host }, { processes: 1, mode: "handoff", name: "fixture" })
      const { address } = yield* listened(started)
      const port = (address as Net.AddressInfo).port
      assert.deepStrictEqual(address, { address: host, port, family })
      const line = announcement(started)
      assert.strictEqual(line?.message, `fixture primary: 1 processes listening on ${host}:${port} (handoff)`)
      assert.deepInclude(line?.annotations, { host, port, mode: "handoff" })
    }).pipe(Effect.scoped)
  )

  it.live("hand-off without a host: announced as every interface (*) with its port", () =>
    Effect.gen(function* () {
      const started = yield* start({ FIXTURE_LISTEN: "any" }, { processes: 1, mode: "handoff", name: "fixture" })
      const { address } = yield* listened(started)
      const port = (address as Net.AddressInfo).port
      assert.isAbove(port, 0)
      assert.strictEqual((address as Net.AddressInfo).address, "")
      assert.strictEqual(
        announcement(started)?.message,
        `fixture primary: 1 processes listening on *:${port} (handoff)`
      )
    }).pipe(Effect.scoped)
  )

  it.live("hand-off on a unix socket: announced with its path", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const started = yield* start(
        { FIXTURE_LISTEN: `unix:${dir}` },
        { processes: 1, mode: "handoff", name: "fixture" }
      )
      const { address } = yield* listened(started)
      const path = Path.join(dir, "1.sock")
      assert.strictEqual(address, path)
      const line = announcement(started)
      assert.strictEqual(line?.message, `fixture primary: 1 processes listening on unix:${path} (handoff)`)
      assert.deepInclude(line?.annotations, { path, mode: "handoff" })
    }).pipe(Effect.scoped)
  )

  it.live("reuseport: processes forked later get the first process's port, whatever another bound", () =>
    Effect.gen(function* () {
      // Process 2 binds a port of its own.
      const started = yield* start({ FIXTURE_OWN_PORT: "2" }, { processes: 2, mode: "reuseport", name: "fixture" })
      yield* listened(started)
      const first = eventsOf(started, 1, "listening")[0]!.event
      const other = eventsOf(started, 2, "listening")[0]!.event
      assert.notStrictEqual(other, first, "process 2 bound a port of its own")
      const port = first.split(" ")[1]
      const pid = eventsOf(started, 1, "start")[0]!.pid
      process.kill(pid, "SIGUSR2")
      yield* exitLine(started, 1, pid)
      yield* eventually(() => eventsOf(started, 1, "start").length === 2, "process 1's replacement")
      assert.strictEqual(eventsOf(started, 1, "start")[1]?.event, `start mode=reuseport port=${port} config=-`)
    }).pipe(Effect.scoped)
  )
})
