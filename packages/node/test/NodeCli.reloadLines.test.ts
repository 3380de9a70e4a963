/**
 * SIGHUP under `NodeCli.serve` (internal/cliServe.ts), in the test process:
 * without `reconfigure` the file's fields apply over the running config; a
 * given `reconfigure` decides what applies and `onReload` is told; the line
 * says so as fields in JSON and written out in text; and a server with
 * something to reload (a config file, TLS files) never also says it has
 * nothing to reload. The SIGHUP listener is called directly (a real signal
 * would reach the test runner's own listeners too).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { type ManagerConfig as Config, ManagerConfig } from "@pool-manager/core"
import { Effect } from "effect"
import type { NodeCli } from "../src/index.ts"
import { certificate, tempDir } from "./utils/certificate.ts"
import { type Given, lineWith, startServe } from "./utils/serve.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

/** Serves with `given`, sends one SIGHUP once it listens, and waits for the line with `done`; the lines. */
const reloaded = (given: Given, done: string, options?: NodeCli.ServeOptions, beforeSighup = () => {}) =>
  Effect.gen(function* () {
    const before = process.listeners("SIGHUP")
    const served = yield* startServe(given, options)
    beforeSighup()
    installedListener("SIGHUP", before)()
    const failed = () => lineWith(served.lines, "reload failed")
    yield* until(() => lineWith(served.lines, done) !== undefined || failed() !== undefined, `a line with "${done}"`)
    assert.isUndefined(failed(), `no failed reload: ${failed()?.message}`)
    // Long enough for any other SIGHUP handler to have logged.
    yield* Effect.sleep("50 millis")
    yield* served.stop
    assert.isUndefined(lineWith(served.lines, "nothing to reload"), "nothing to reload")
    return served.lines
  })

/** A config file in a temporary folder, with `text` in it. */
const configFile = (text: string) =>
  Effect.map(tempDir, (dir) => {
    const file = Path.join(dir, "pool.yaml")
    Fs.writeFileSync(file, text)
    return file
  })

describe("NodeCli reload lines", { timeout: 10_000 }, () => {
  it.live("without options: the file's fields over the running config, as fields of a JSON line", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 5\n")
      const lines = yield* reloaded(
        { logFormat: "json", configFile: file, manager: { maxWorkersCount: 2, drainTimeout: "7 seconds" } },
        "config reloaded"
      )
      const line = lineWith(lines, "config reloaded")
      assert.strictEqual(line?.message, `pool-manager config reloaded from ${file}`)
      assert.include(line?.annotations, { configFile: file, "max-workers": 5, "drain-timeout": "7s" })
    }).pipe(Effect.scoped)
  )

  it.live("a given reconfigure decides what applies, onReload is told, and the text line writes it out", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 5\n")
      const told: Array<Config.ManagerConfig> = []
      const lines = yield* reloaded({ configFile: file }, "config reloaded", {
        name: "tested",
        reconfigure: (input) => ManagerConfig.make({ ...input, queueSize: 9 }),
        onReload: (applied) => void told.push(applied)
      })
      const message = lineWith(lines, "config reloaded")?.message ?? ""
      assert.include(message, `tested config reloaded from ${file}: `)
      assert.include(message, " max-workers=5 ")
      assert.include(message, " queue-size=9 ")
      assert.deepStrictEqual(
        told.map((applied) => [applied.maxWorkersCount, applied.queueSize]),
        [[5, 9]]
      )
    }).pipe(Effect.scoped)
  )

  it.live("options without onReload: the reload applies all the same", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 6\n")
      const lines = yield* reloaded({ configFile: file }, "config reloaded", {
        name: "tested",
        reconfigure: (input) => ManagerConfig.make(input)
      })
      assert.include(lineWith(lines, "config reloaded")?.message, " max-workers=6 ")
    }).pipe(Effect.scoped)
  )

  it.live("with TLS files and no config file: the TLS files are reloaded, and nothing else is said", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const one = yield* certificate
      const two = yield* certificate
      const [key, cert] = [Path.join(dir, "key.pem"), Path.join(dir, "cert.pem")] as const
      Fs.writeFileSync(key, one.key)
      Fs.writeFileSync(cert, one.cert)
      const lines = yield* reloaded(
        {
          tlsFiles: { key, cert },
          server: { host: "127.0.0.1", port: 0, tls: { key: one.key, cert: one.cert } }
        },
        "TLS key and certificate reloaded",
        { name: "tested" },
        () => {
          Fs.writeFileSync(key, two.key)
          Fs.writeFileSync(cert, two.cert)
        }
      )
      assert.isUndefined(lineWith(lines, "config"), "no config line")
    }).pipe(Effect.scoped)
  )
})
