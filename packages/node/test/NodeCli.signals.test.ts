/**
 * Signals on the real command: SIGHUP never terminates the server (without
 * `--config` it says there is nothing to reload; with one it reloads; with
 * `--processes 2` the primary passes it on and every process lives on), and
 * a SIGTERM logs one "stopping" line (the signal, the drain timeout) and one
 * "stopped" line (connections drained, how long), at the default level.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { connect } from "./utils/client.ts"
import { bin, get, slowServer, spawnNode, tempDir } from "./utils/cliProcess.ts"
import { within } from "./utils/within.ts"

const ask = (port: number, message = "HI!") =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.send(message)
    return yield* client.receive(2, 15_000)
  }).pipe(Effect.scoped)

describe("NodeCli signals", () => {
  it.live(
    "SIGHUP without --config logs that there is nothing to reload and the server serves on; SIGTERM logs stopping and stopped",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin, "--port", "0", "--drain-timeout", "7s"])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        for (let i = 1; i <= 3; i++) {
          child.process.kill("SIGHUP")
          yield* child.waitForAll(/SIGHUP: pool-manager has nothing to reload/, i, 10_000)
          assert.strictEqual(child.process.exitCode, null)
          assert.strictEqual(child.process.signalCode, null)
          assert.strictEqual(yield* ask(port), "OK")
        }
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(15_000), 0)
        assert.match(child.stdout(), /pool-manager stopping on SIGTERM: draining 0 connections for up to 7s/)
        assert.match(child.stdout(), /pool-manager stopped: 0 connections drained in \d/)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "with --log-format json the stopping and stopped lines carry their data as fields",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin, "--port", "0", "--drain-timeout", "4s", "--log-format", "json"])
        yield* child.waitFor(/listening on 127\.0\.0\.1:\d+/)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(15_000), 0)
        const lines = child
          .stdout()
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { message: unknown; annotations: Record<string, unknown> })
        const text = (line: { message: unknown }) =>
          Array.isArray(line.message) ? line.message.join(" ") : String(line.message)
        const stopping = lines.find((line) => text(line).includes("stopping on SIGTERM"))
        assert.deepInclude(stopping?.annotations, { signal: "SIGTERM", drainTimeout: "4s", connections: 0 })
        const stopped = lines.find((line) => text(line).includes("stopped:"))
        assert.deepInclude(stopped?.annotations, { drained: 0, cut: 0 })
        assert.isNumber(stopped?.annotations.stopMillis)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "the stopped line counts the connections the drain waited for",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([slowServer, "--port", "0", "--clients-deadline", "30s"])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        // Two requests in the callback (SLOW sleeps in it) when the signal comes.
        const slow = yield* Effect.forkChild(
          Effect.all([ask(port, "SLOW"), ask(port, "SLOW")], { concurrency: "unbounded" })
        )
        yield* Effect.sleep("300 millis")
        child.process.kill("SIGINT")
        assert.deepStrictEqual(
          yield* within(Fiber.join(slow), "15 seconds", "both slow requests answered while draining"),
          ["OK", "OK"]
        )
        assert.strictEqual(yield* child.exit(15_000), 0)
        assert.match(child.stdout(), /slow stopping on SIGINT: draining 2 connections for up to/)
        assert.match(child.stdout(), /slow stopped: 2 connections drained in/)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "SIGHUP with --config reloads the file; a broken file is logged and the process lives on",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "pool.json")
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 4 }))
        const child = yield* spawnNode([bin, "--port", "0", "--config", file])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) .*max-workers=4 /))[1])
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 9 }))
        child.process.kill("SIGHUP")
        yield* child.waitFor(/config reloaded from .* max-workers=9 /)
        // Not JSON, and a secret: named with nothing of its content.
        Fs.writeFileSync(file, "root:x:0:0:secret-hash\n")
        child.process.kill("SIGHUP")
        const failed = (yield* child.waitFor(/config reload failed, keeping the running configuration: (.*)/))[1]!
        assert.include(failed, "not valid JSON")
        assert.notInclude(child.stdout() + child.stderr(), "secret-hash")
        assert.notInclude(child.stdout() + child.stderr(), "root:x")
        assert.strictEqual(yield* ask(port), "OK")
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(15_000), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "with --processes 2 and no --config, SIGHUP reaches every process and none exits",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin, "--port", "0", "--metrics-port", "0", "--processes", "2"])
        const port = Number((yield* child.waitFor(/primary: 2 processes listening on 127\.0\.0\.1:(\d+)/))[1])
        const metrics = (yield* child.waitFor(/metrics at (http:\S+)\/metrics/))[1]!
        child.process.kill("SIGHUP")
        yield* child.waitForAll(/SIGHUP: pool-manager has nothing to reload/, 2, 10_000)
        yield* child.waitFor(/primary: SIGHUP passed on to 2 processes/)
        yield* Effect.sleep("300 millis")
        assert.notMatch(child.stdout() + child.stderr(), /exited with/)
        assert.strictEqual(yield* ask(port), "OK")
        const health = yield* get(`${metrics}/healthz`)
        assert.deepStrictEqual(health, { status: 200, body: "ok: 2 of 2 processes serving\n" })
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(20_000), 0)
        assert.match(child.stdout(), /primary: stopping 2 processes on SIGTERM/)
        assert.match(child.stdout(), /primary: stopped 2 processes in/)
      }).pipe(Effect.scoped),
    60_000
  )
})
