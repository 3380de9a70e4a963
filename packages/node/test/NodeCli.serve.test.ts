/**
 * What the command does while it serves (internal/cliServe.ts), run in the
 * test process: the endpoints (metrics, health, status, agent check) answer
 * from before the listening line until the pool drained, say `stopping` and
 * `drain` from the stop on, and the stop is logged in two lines; SIGHUP
 * reloads the config file and the TLS files, keeps the running ones when a
 * reload fails, or says there is nothing to reload. The listeners are called
 * directly (a real SIGHUP would reach the test runner's own listeners too);
 * NodeCli.signals.test.ts sends real signals to the command.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { certificate } from "./utils/certificate.ts"
import { agentCheck } from "./utils/client.ts"
import { get, tempDir } from "./utils/cliProcess.ts"
import { runCommand } from "./utils/command.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

const lineWith = (out: ReadonlyArray<string>, text: string) => out.find((line) => line.includes(text))

// Servers, and in one test forked processes: seconds under a loaded CI machine, not the default 5 s bound.
describe("NodeCli serve", { timeout: 30_000 }, () => {
  it.live("the endpoints answer while it serves, say stopping during the lame duck, and the stop is logged", () =>
    Effect.gen(function* () {
      const server = runCommand(
        ["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--agent-port", "0"].concat([
          "--shutdown-delay",
          "2 seconds",
          "--drain-timeout",
          "5 seconds"
        ]),
        { name: "tested" }
      )
      const fiber = yield* Effect.forkChild(server.effect)
      yield* until(() => lineWith(server.out, "agent-check at") !== undefined, "the endpoints' lines")
      const listening = server.out.findIndex((line) => line.includes("tested listening on 127.0.0.1:"))
      const metricsAt = server.out.findIndex((line) => line.includes("tested metrics at http://127.0.0.1:"))
      const agentAt = server.out.findIndex((line) => line.includes("tested agent-check at 127.0.0.1:"))
      assert.isTrue(listening >= 0 && metricsAt > listening && agentAt > metricsAt, server.out.join("\n"))
      const url = /at (http:\/\/\S+)\/metrics/.exec(server.out[metricsAt] ?? "")?.[1]
      const agentPort = Number(/agent-check at 127\.0\.0\.1:(\d+)/.exec(server.out[agentAt] ?? "")?.[1])

      assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 200, body: "ok\n" })
      assert.strictEqual(yield* agentCheck(agentPort), "up ready 100%\n")
      const stats = yield* get(`${url}/stats.json`)
      assert.strictEqual(stats.status, 200)
      assert.isTrue(JSON.parse(stats.body).stats.running)
      assert.include((yield* get(`${url}/metrics`)).body, "pool_workers_busy")

      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* until(() => lineWith(server.out, "tested stopping") !== undefined, "the stopping line")
      assert.match(
        lineWith(server.out, "tested stopping") ?? "",
        /tested stopping: draining 0 connections for up to 5s after 2s still accepting/
      )
      // The lame-duck period: the endpoints still answer, and send clients elsewhere.
      assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 503, body: "stopping\n" })
      assert.strictEqual(yield* agentCheck(agentPort), "drain\n")
      yield* Fiber.join(stopping)
      assert.match(lineWith(server.out, "tested stopped") ?? "", /tested stopped: 0 connections drained in \d/)
    })
  )

  it.live("SIGHUP with nothing to reload says so", () =>
    Effect.gen(function* () {
      const before = process.listeners("SIGHUP")
      const server = runCommand(["--host", "127.0.0.1", "--port", "0"], { name: "tested" })
      const fiber = yield* Effect.forkChild(server.effect)
      yield* until(() => lineWith(server.out, "listening") !== undefined, "the listening line")
      installedListener("SIGHUP", before)()
      yield* until(() => lineWith(server.out, "SIGHUP") !== undefined, "the SIGHUP line")
      assert.include(lineWith(server.out, "SIGHUP"), "SIGHUP: tested has nothing to reload (no --config, no TLS files)")
      yield* Fiber.interrupt(fiber)
    })
  )

  it.live("SIGHUP reloads the config file and the TLS files, and keeps the running ones when they fail", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const one = yield* certificate
      const two = yield* certificate
      const [config, key, cert] = ["pool.yaml", "key.pem", "cert.pem"].map((name) => Path.join(dir, name)) as [
        string,
        string,
        string
      ]
      Fs.writeFileSync(config, "maxWorkersCount: 3\n")
      Fs.writeFileSync(key, one.key)
      Fs.writeFileSync(cert, one.cert)
      const before = process.listeners("SIGHUP")
      const server = runCommand(
        ["--host", "127.0.0.1", "--port", "0", "--config", config, "--tls-key", key, "--tls-cert", cert],
        { name: "tested" }
      )
      const fiber = yield* Effect.forkChild(server.effect)
      yield* until(() => lineWith(server.out, "listening") !== undefined, "the listening line")
      assert.include(lineWith(server.out, "listening"), " max-workers=3 ")
      const sighup = installedListener("SIGHUP", before)

      Fs.writeFileSync(config, "maxWorkersCount: 5\n")
      Fs.writeFileSync(cert, two.cert)
      Fs.writeFileSync(key, two.key)
      sighup()
      yield* until(() => lineWith(server.out, "TLS key and certificate reloaded") !== undefined, "the TLS reload")
      yield* until(() => lineWith(server.out, "config reloaded") !== undefined, "the config reload")
      assert.include(lineWith(server.out, "config reloaded"), `tested config reloaded from ${config}: `)
      assert.include(lineWith(server.out, "config reloaded"), " max-workers=5 ")
      assert.include(
        lineWith(server.out, "TLS key and certificate reloaded"),
        `SIGHUP: TLS key and certificate reloaded from ${key} and ${cert}`
      )

      // A certificate that does not match the key: the running pair stays, and the log says why.
      Fs.writeFileSync(cert, one.cert)
      sighup()
      yield* until(() => lineWith(server.out, "TLS reload failed") !== undefined, "the failed TLS reload")
      assert.include(
        lineWith(server.out, "TLS reload failed"),
        `TLS reload failed, keeping the running key and certificate: cannot use --tls-key ${key} and --tls-cert ${cert}: `
      )
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped)
  )
})
