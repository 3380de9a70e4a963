/**
 * The process series on `/metrics` of the real `pool-manager`: memory,
 * descriptors against the soft limit, CPU, event-loop lag, the build, and
 * whether the last config load worked (at start and on each SIGHUP).
 */

import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, get, parsePrometheus, poll, type Sample, spawnNode, tempDir } from "./utils/cliProcess.ts"

const packageVersion = (
  JSON.parse(Fs.readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as {
    version: string
  }
).version

const scrape = (url: string) =>
  Effect.map(get(`${url}/metrics`), ({ status, body }) => {
    assert.strictEqual(status, 200)
    return parsePrometheus(body)
  })

const one = (samples: ReadonlyArray<Sample>, name: string): Sample => {
  const found = samples.filter((sample) => sample.name === name)
  assert.strictEqual(found.length, 1, `${name} in /metrics`)
  return found[0]!
}
const value = (samples: ReadonlyArray<Sample>, name: string) => one(samples, name).value

describe("NodeMetricsServer process series", () => {
  it.live(
    "reports memory, descriptors against the soft limit, CPU and the build",
    () =>
      Effect.gen(function* () {
        // The descriptor limit lowered by the shell (Node raises its soft limit to the hard one), as `ulimit -n` in a unit or a container would.
        const child = ChildProcess.spawn(
          "sh",
          [
            "-c",
            'ulimit -n 400 && exec "$0" "$@"',
            process.execPath,
            "--conditions=@pool-manager/source",
            bin,
            ...["--port", "0", "--metrics-port", "0", "--clients-deadline", "60s"]
          ],
          { stdio: ["ignore", "pipe", "inherit"] }
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        let stdout = ""
        child.stdout.on("data", (chunk) => {
          stdout += chunk
        })
        const port = Number(yield* poll("listening", () => /listening on 127\.0\.0\.1:(\d+) /.exec(stdout)?.[1]))
        const url = yield* poll("metrics", () => /metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(stdout)?.[1])

        const before = yield* scrape(url)
        assert.strictEqual(value(before, "process_max_fds"), 400)
        assert.isAbove(value(before, "process_resident_memory_bytes"), 10_000_000)
        assert.isAbove(value(before, "process_cpu_seconds_total"), 0)
        assert.approximately(value(before, "process_start_time_seconds"), Date.now() / 1000, 120)
        const build = one(before, "pool_build_info")
        assert.deepStrictEqual(
          [build.value, build.labels.version, build.labels.node],
          [1, packageVersion, process.version]
        )

        // Each connection holds a descriptor.
        for (let i = 0; i < 20; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
        }
        const after = yield* scrape(url)
        const opened = value(after, "process_open_fds") - value(before, "process_open_fds")
        assert.isAtLeast(opened, 20)
        assert.isBelow(value(after, "process_open_fds"), 400)
        assert.isAtLeast(value(after, "process_cpu_seconds_total"), value(before, "process_cpu_seconds_total"))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "measures the event loop's lag: a callback that blocks it for 400 ms shows",
    () =>
      Effect.gen(function* () {
        const script = `
          const { run } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL("../src/NodeCli.ts", import.meta.url))).href)})
          const { syncCallback } = await import("@pool-manager/core/PoolManager")
          run({
            name: "blocking",
            args: ["--port", "0", "--metrics-port", "0"],
            callback: syncCallback((conn) => {
              const until = Date.now() + 400
              while (Date.now() < until) {}
              conn.writeNow(new TextEncoder().encode("OK"))
            })
          })`
        const child = yield* spawnNode(["--input-type=module", "--eval", script])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        const url = (yield* child.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!
        // A first scrape starts the window the next one reports.
        yield* scrape(url)
        yield* Effect.sleep("1100 millis")
        const client = yield* connect(port)
        yield* client.send("HI!")
        assert.strictEqual(yield* client.receive(2), "OK")
        const samples = yield* scrape(url)
        assert.isAtLeast(value(samples, "nodejs_eventloop_lag_max_seconds"), 0.3)
        // One blocked turn among a second's hundred samples: the max shows it, the p99 need not.
        const p99 = value(samples, "nodejs_eventloop_lag_p99_seconds")
        assert.isTrue(p99 >= 0 && p99 <= value(samples, "nodejs_eventloop_lag_max_seconds"))
        assert.isAbove(value(samples, "nodejs_eventloop_lag_seconds"), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "reports whether the last config load worked, and when one last did",
    () =>
      Effect.gen(function* () {
        const file = Path.join(yield* tempDir, "pool.yaml")
        Fs.writeFileSync(file, "maxWorkersCount: 3\n")
        const started = Date.now() / 1000
        const child = yield* spawnNode([bin, "--port", "0", "--metrics-port", "0", "--config", file])
        const url = (yield* child.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!
        const first = yield* scrape(url)
        assert.strictEqual(value(first, "pool_config_last_reload_successful"), 1)
        const loaded = value(first, "pool_config_last_reload_success_timestamp_seconds")
        assert.approximately(loaded, started, 60)

        Fs.writeFileSync(file, "maxWorkersCount: many\n")
        child.process.kill("SIGHUP")
        yield* child.waitFor(/config reload failed/)
        const failed = yield* scrape(url)
        assert.strictEqual(value(failed, "pool_config_last_reload_successful"), 0)
        assert.strictEqual(value(failed, "pool_config_last_reload_success_timestamp_seconds"), loaded)

        Fs.writeFileSync(file, "maxWorkersCount: 4\n")
        child.process.kill("SIGHUP")
        yield* child.waitFor(/config reloaded/)
        const fixed = yield* scrape(url)
        assert.strictEqual(value(fixed, "pool_config_last_reload_successful"), 1)
        assert.isAbove(value(fixed, "pool_config_last_reload_success_timestamp_seconds"), loaded)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
