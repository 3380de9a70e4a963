/**
 * The metrics endpoint: `pool-manager --metrics-port 0` under load, scraped
 * while connections are open and parsed as the Prometheus text format; and
 * `/healthz` answering 503 while the pool drains (in-process).
 */

import { assert, describe, it } from "@effect/vitest"
import { ManagerConfig } from "@pool-manager/core"
import { Effect, Fiber, Logger, Metric } from "effect"
import { NodeCli } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { bin, get, parsePrometheus, poll, select, spawnNode, total } from "./utils/cliProcess.ts"
import { within } from "./utils/within.ts"

/** GETs `url` until `check` accepts the answer (every 50 ms, for at most `timeout` ms). */
const getUntil = (url: string, check: (answer: { status: number; body: string }) => boolean, timeout = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeout
    while (true) {
      const answer = yield* get(url)
      if (check(answer)) return answer
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`${url} still answers ${JSON.stringify(answer)}`))
      yield* Effect.sleep("50 millis")
    }
  })

describe("NodeMetricsServer", () => {
  it.live(
    "serves the pool's metrics in the Prometheus format while connections are open",
    () =>
      Effect.gen(function* () {
        // A long deadline: the held connections must stay open however slow the machine is.
        const child = yield* spawnNode([
          bin,
          ...["--port", "0", "--metrics-port", "0", "--max-workers", "20", "--clients-deadline", "60s"]
        ])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        const metricsUrl = (yield* child.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!

        // Four connections stay open; six more send five messages each and close.
        const held = []
        for (let i = 0; i < 4; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
          held.push(client)
        }
        yield* Effect.forEach(
          [1, 2, 3, 4, 5, 6],
          () =>
            Effect.gen(function* () {
              const client = yield* connect(port)
              for (let i = 1; i <= 5; i++) {
                yield* client.send("HI!")
                yield* client.receive(2 * i)
              }
            }).pipe(Effect.scoped),
          { concurrency: 3 }
        )

        // The six closed connections leave the pool asynchronously: scrape until they have.
        const { body } = yield* getUntil(`${metricsUrl}/metrics`, ({ body }) =>
          select(parsePrometheus(body), "pool_workers_busy").some((sample) => sample.value === 4)
        )
        const samples = parsePrometheus(body)
        assert.strictEqual(total(samples, "pool_workers_busy"), 4)
        assert.isAtLeast(total(samples, "pool_workers"), 4)
        assert.isAtLeast(total(samples, "pool_connections_accepted_total"), 10)
        assert.strictEqual(total(samples, "pool_messages_total"), 34)
        assert.strictEqual(total(samples, "pool_bytes_read_total"), 34 * 3)
        assert.strictEqual(total(samples, "pool_bytes_written_total"), 34 * 2)
        assert.strictEqual(total(samples, "pool_connections_rejected_total"), 0)
        assert.strictEqual(total(samples, "pool_connections_closed_total", { reason: "peer" }), 6)
        assert.strictEqual(total(samples, "pool_running"), 1)
        // The histogram: cumulative buckets, +Inf equal to the count, one observation per message.
        const buckets = select(samples, "pool_callback_duration_seconds_bucket")
        assert.isAbove(buckets.length, 2)
        for (let i = 1; i < buckets.length; i++) assert.isAtLeast(buckets[i]!.value, buckets[i - 1]!.value)
        assert.strictEqual(buckets.at(-1)!.labels.le, "+Inf")
        assert.strictEqual(buckets.at(-1)!.value, 34)
        assert.strictEqual(total(samples, "pool_callback_duration_seconds_count"), 34)
        assert.isAbove(total(samples, "pool_callback_duration_seconds_sum"), 0)

        assert.deepStrictEqual(yield* get(`${metricsUrl}/healthz`), { status: 200, body: "ok\n" })
        assert.strictEqual((yield* get(`${metricsUrl}/other`)).status, 404)

        child.process.kill("SIGTERM")
        for (const client of held) yield* client.closed()
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "answers /healthz with 503 while the pool drains, and closes after it",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const collect = Logger.make(({ message }) => {
          lines.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        let handling = false
        const fiber = yield* NodeCli.serve(
          {
            manager: yield* ManagerConfig.make({ drainTimeout: "10 seconds" }),
            server: { port: 0 },
            metrics: { host: "127.0.0.1", port: 0 }
          },
          (conn) =>
            Effect.sync(() => {
              handling = true
            }).pipe(Effect.andThen(Effect.sleep("1 second")), Effect.andThen(conn.write("OK")), Effect.ignore)
        ).pipe(
          Effect.provideService(Logger.CurrentLoggers, new Set([collect])),
          // A registry of its own: other tests of this file run pools in the same process.
          Effect.provideService(Metric.MetricRegistry, new Map()),
          Effect.forkChild
        )
        const find = (pattern: RegExp) => () => lines.map((line) => pattern.exec(line)).find((match) => match !== null)
        const port = Number((yield* poll("the listening line", find(/listening on 127\.0\.0\.1:(\d+) /)))[1])
        const url = (yield* poll("the metrics line", find(/metrics at (http:\S+)\/metrics/)))[1]!
        assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 200, body: "ok\n" })

        const client = yield* connect(port)
        yield* client.send("HI!")
        yield* poll("the callback to start", () => (handling ? true : undefined), 5000)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        assert.deepStrictEqual(yield* getUntil(`${url}/healthz`, ({ status }) => status !== 200), {
          status: 503,
          body: "stopping\n"
        })
        assert.strictEqual(yield* client.receive(2), "OK")
        yield* within(Fiber.join(stopping), "10 seconds", "the server to stop once its callback answered")
        const after = yield* Effect.exit(get(`${url}/healthz`))
        assert.strictEqual(after._tag, "Failure", "the endpoint is closed once the pool has stopped")
      }).pipe(Effect.scoped),
    30_000
  )
})
