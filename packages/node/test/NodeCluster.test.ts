/**
 * `--processes 2`, in both cluster modes: two worker processes share the port
 * and both serve (with `reuseport`, the kernel spreads the connections: both
 * get some), the primary's `/metrics` labels each worker's series with
 * `process`, and SIGTERM to the primary drains both (answering requests in
 * flight) and exits 0. A unix socket is shared by hand-off.
 */

import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeCluster } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { get, parsePrometheus, select, slowServer, spawnNode, total } from "./utils/cliProcess.ts"

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// Another socket can bind the port with SO_REUSEPORT only if its listeners set it too (same user).
const canShare = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const server = Net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ host: "127.0.0.1", port, reusePort: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

describe("NodeCluster", () => {
  it("aggregates the texts of several processes with a process label, one family at a time", () => {
    const text = (busy: number, accepted: number) =>
      [
        "# HELP pool_workers_busy Connections being served",
        "# TYPE pool_workers_busy gauge",
        `pool_workers_busy ${busy}`,
        "# HELP pool_connections_rejected_total Connections refused by put, by reason",
        "# TYPE pool_connections_rejected_total counter",
        `pool_connections_rejected_total{reason="busy"} ${accepted}`,
        ""
      ].join("\n")
    const merged = NodeCluster.aggregate([
      { process: 1, metrics: text(2, 5) },
      { process: 2, metrics: text(3, 7) }
    ])
    assert.strictEqual(
      merged,
      [
        "# HELP pool_workers_busy Connections being served",
        "# TYPE pool_workers_busy gauge",
        `pool_workers_busy{process="1"} 2`,
        `pool_workers_busy{process="2"} 3`,
        "# HELP pool_connections_rejected_total Connections refused by put, by reason",
        "# TYPE pool_connections_rejected_total counter",
        `pool_connections_rejected_total{process="1",reason="busy"} 5`,
        `pool_connections_rejected_total{process="2",reason="busy"} 7`,
        ""
      ].join("\n")
    )
    assert.strictEqual(NodeCluster.aggregate([]), "")
  })

  it.live.each(["reuseport", "handoff"] as const)(
    "runs two serving processes (%s), aggregates their metrics, and drains both on SIGTERM",
    (mode) =>
      Effect.gen(function* () {
        const child = yield* spawnNode([
          slowServer,
          "--port",
          "0",
          "--metrics-port",
          "0",
          "--processes",
          "2",
          "--cluster-mode",
          mode,
          "--clients-deadline",
          "30s"
        ])
        const port = Number(
          (yield* child.waitFor(
            new RegExp(`slow primary: 2 processes listening on 127\\.0\\.0\\.1:(\\d+) \\(${mode}\\)`)
          ))[1]
        )
        const metricsUrl = (yield* child.waitFor(/slow metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!
        const lines = yield* child.waitForAll(
          /slow listening on 127\.0\.0\.1:(\d+) .*\{ process: (\d), pid: (\d+) \}/,
          2
        )
        assert.deepStrictEqual(
          lines.map((line) => Number(line[1])),
          [port, port]
        )
        assert.deepStrictEqual(lines.map((line) => line[2]).sort(), ["1", "2"])
        const pids = lines.map((line) => Number(line[3]))
        assert.notStrictEqual(pids[0], pids[1])
        // reuseport: the workers' own sockets, with SO_REUSEPORT; handoff: the primary's, without.
        assert.strictEqual(yield* canShare(port), mode === "reuseport")

        // Twenty requests, each on its own connection.
        yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          () =>
            Effect.gen(function* () {
              const client = yield* connect(port)
              yield* client.send("HI!")
              assert.strictEqual(yield* client.receive(2), "OK")
            }).pipe(Effect.scoped),
          { concurrency: 4 }
        )
        const metrics = yield* get(`${metricsUrl}/metrics`)
        assert.strictEqual(metrics.status, 200)
        const samples = parsePrometheus(metrics.body)
        assert.strictEqual(total(samples, "pool_processes"), 2)
        assert.deepStrictEqual(
          select(samples, "pool_process_up").map((sample) => [sample.labels.process, sample.value]),
          [
            ["1", 1],
            ["2", 1]
          ]
        )
        // Both processes took connections; together, all of them.
        const accepted = ["1", "2"].map((n) => total(samples, "pool_connections_accepted_total", { process: n }))
        assert.isAbove(accepted[0]!, 0, `accepted per process: ${accepted}`)
        assert.isAbove(accepted[1]!, 0, `accepted per process: ${accepted}`)
        assert.strictEqual(accepted[0]! + accepted[1]!, 20)
        assert.strictEqual(total(samples, "pool_messages_total"), 20)
        assert.strictEqual(select(samples, "pool_running").length, 2)
        assert.deepStrictEqual(yield* get(`${metricsUrl}/healthz`), {
          status: 200,
          body: "ok: 2 of 2 processes serving\n"
        })

        // Four slow requests in flight when the primary is told to stop.
        const clients = []
        for (let i = 0; i < 4; i++) {
          const client = yield* connect(port)
          yield* client.send("SLOW")
          clients.push(client)
        }
        yield* child.waitForAll(/handling in \d+/, 4)
        child.process.kill("SIGTERM")
        for (const client of clients) {
          assert.strictEqual(yield* client.receive(2), "OK")
          yield* client.closed()
        }
        assert.strictEqual(yield* child.exit(), 0)
        assert.deepStrictEqual(pids.map(isAlive), [false, false])
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "on a unix socket, --cluster-mode auto shares it by hand-off",
    () =>
      Effect.gen(function* () {
        const path = Path.join(Os.tmpdir(), `pool-manager-cluster-${process.pid}.sock`)
        const child = yield* spawnNode([slowServer, "--path", path, "--processes", "2"])
        yield* child.waitFor(/slow primary: 2 processes listening on unix:\S+ \(handoff\)/)
        for (let i = 0; i < 4; i++) {
          const client = yield* connect(path)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
        }
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
