/**
 * The config file: parsing and validation, the precedence defaults < file <
 * flags, and `pool-manager --config FILE` reloading it on SIGHUP (a valid file
 * is applied live, an invalid one is reported and changes nothing).
 */

import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ManagerConfig } from "@pool-manager/core"
import { Duration, Effect, Option } from "effect"
import { NodeCliConfig, NodeConfigFile } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { bin, noFlags, spawnNode, tempDir } from "./utils/cliProcess.ts"

const parseError = (text: string) =>
  Effect.runSync(
    NodeConfigFile.parse(text, "pool.json").pipe(
      Effect.flip,
      Effect.map((error) => error.message)
    )
  )

/** Starts `pool-manager` with `args` and returns it with its port. */
const start = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([bin, "--port", "0", ...args])
    const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
    return { child, port }
  })

/** Opens a connection and checks it is served; it stays open until the test's scope closes. */
const admitted = (port: number) =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.send("HI!")
    assert.strictEqual(yield* client.receive(2), "OK")
    return client
  })

/** Opens a connection and checks it is refused as busy. */
const refused = (port: number) =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.closed()
    assert.strictEqual(client.received(), "ERROR_SERVER_BUSY")
  }).pipe(Effect.scoped)

describe("NodeConfigFile", () => {
  it("parses fields, with durations as Duration or CLI strings or milliseconds", () => {
    const input = Effect.runSync(
      NodeConfigFile.parse(
        JSON.stringify({
          maxWorkersCount: 3,
          clientsDeadline: "3s",
          drainTimeout: "2 seconds",
          queueTimeout: 1500,
          admissionPolicy: "queue"
        }),
        "pool.json"
      )
    )
    const config = Effect.runSync(ManagerConfig.make(input))
    assert.strictEqual(config.maxWorkersCount, 3)
    assert.strictEqual(config.admissionPolicy, "queue")
    assert.deepStrictEqual(
      [config.clientsDeadline, config.drainTimeout, config.queueTimeout].map(Duration.toMillis),
      [3000, 2000, 1500]
    )
  })

  it.effect("rejects what is not a valid configuration, naming the file and the field", () =>
    Effect.gen(function* () {
      assert.include(parseError(`{"maxWorkers": 3}`), `config file pool.json: unknown field "maxWorkers"`)
      assert.include(
        parseError(`{"maxWorkersCount": 3,}`),
        "config file pool.json: not valid JSON at line 1, column 23"
      )
      assert.include(parseError(`[1, 2]`), "expected a JSON object")
      assert.include(parseError(`{"bufferSize": -1}`), "bufferSize (line 1, column 2): expected a number >= 0")
      assert.include(parseError(`{"clientsDeadline": "soon"}`), "clientsDeadline")
      assert.include(
        parseError(`{"minWorkersCount": 5, "maxWorkersCount": 2}`),
        "minWorkersCount (line 1, column 2): expected at most"
      )
      // Not an object at all.
      for (const text of ["3", "null", `"maxWorkersCount"`]) {
        assert.strictEqual(parseError(text), "config file pool.json: expected a JSON object of ManagerConfig fields")
      }
      // Every unknown field, located; a key that is no field name (the content of some other file) is not shown.
      for (const key of ["1password", "hunter2 is my password"]) {
        assert.strictEqual(
          parseError(`{"a": 1, ${JSON.stringify(key)}: 2}`),
          `config file pool.json: unknown field "a" (line 1, column 2), (a key) (line 1, column 10) (known: ${Object.keys(ManagerConfig.defaults).join(", ")})`,
          key
        )
      }
      // Every invalid field, in one message.
      assert.strictEqual(
        parseError(`{"bufferSize": -1, "maxWorkersCount": -1}`),
        "config file pool.json: bufferSize (line 1, column 2): expected a number >= 0; maxWorkersCount (line 1, column 20): expected a number >= 0"
      )
      const missing = yield* Effect.flip(NodeConfigFile.read("/nonexistent/pool.json"))
      assert.include(missing.message, "config file /nonexistent/pool.json: cannot read it")
    })
  )

  it("combines defaults < file < flags, each winning over a lower one it contradicts", () => {
    const defaults = { minWorkersCount: 5, maxWorkersCount: 10, idleWorkerTimeout: Duration.seconds(9) }
    const file = { maxWorkersCount: 3, idleWorkerTimeout: Duration.seconds(5), queueSize: 7, queueTimeout: 800 }
    const config = (settings: Partial<NodeCliConfig.Settings>) =>
      Effect.runSync(NodeCliConfig.makeConfig({ ...noFlags, ...settings }, defaults, file)).manager
    // The file's maximum of 3 lowers the default minimum of 5.
    const fromFile = config({})
    assert.deepStrictEqual([fromFile.minWorkersCount, fromFile.maxWorkersCount], [3, 3])
    assert.strictEqual(Duration.toMillis(fromFile.idleWorkerTimeout), 5000)
    assert.strictEqual(fromFile.queueSize, 7)
    const withFlags = config({
      maxWorkersCount: Option.some(8),
      queueSize: Option.some(9),
      minWorkersCount: Option.some(8)
    })
    assert.deepStrictEqual([withFlags.minWorkersCount, withFlags.maxWorkersCount], [8, 8])
    assert.strictEqual(withFlags.queueSize, 9)
    assert.strictEqual(Duration.toMillis(withFlags.queueTimeout), 800)
  })

  it.live(
    "on SIGHUP, applies a changed file live (defaults < file < flags)",
    () =>
      Effect.gen(function* () {
        const file = Path.join(yield* tempDir, "pool.json")
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 1 }))
        // A long deadline: the held connections must outlive the reload on a slow machine.
        const { child, port } = yield* start([
          "--config",
          file,
          "--idle-worker-timeout",
          "7s",
          "--clients-deadline",
          "30s"
        ])
        assert.match(child.stdout(), /max-workers=1 .*idle-worker-timeout=7s/)
        yield* admitted(port)
        yield* refused(port)

        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 3, idleWorkerTimeout: "1s", debug: true }))
        child.process.kill("SIGHUP")
        // The flag still wins over the file's idleWorkerTimeout.
        yield* child.waitFor(/config reloaded from \S+: .*max-workers=3 .*idle-worker-timeout=7s .*debug=true/)
        yield* admitted(port)
        const third = yield* admitted(port)
        yield* refused(port)
        // debug turned on by the reload shows the pool's Debug events.
        third.socket.destroy()
        yield* child.waitFor(/DEBUG .*connection closed/)

        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "on SIGHUP, reports an invalid file and keeps the running configuration",
    () =>
      Effect.gen(function* () {
        const file = Path.join(yield* tempDir, "pool.json")
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 1, clientsDeadline: "1s" }))
        const { child, port } = yield* start(["--config", file, "--clients-deadline", "10s"])
        assert.match(child.stdout(), /max-workers=1 .*clients-deadline=10s /)

        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: "three" }))
        child.process.kill("SIGHUP")
        const line = yield* child.waitFor(/.*config reload failed, keeping the running configuration: .*/)
        assert.match(line[0], /ERROR .*config file \S+pool\.json: maxWorkersCount \(line 1, column 2\): /)
        yield* admitted(port)
        yield* refused(port)

        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
        assert.notMatch(child.stdout(), /config reloaded/)
      }).pipe(Effect.scoped),
    60_000
  )
})
