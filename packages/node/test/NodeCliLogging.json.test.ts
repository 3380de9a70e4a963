/**
 * `--log-format json`: every line the program writes, on stdout and on
 * stderr, is one JSON object, including the errors that stop it before it
 * serves; the listening lines carry the address, the processes and each
 * setting as fields rather than in the message.
 */

import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bin, runBin, spawnNode } from "./utils/cliProcess.ts"

interface JsonLine {
  readonly message: string
  readonly level: string
  readonly annotations: Record<string, unknown>
}

/** Every line of `output` parsed; fails on any line that is not a JSON object. */
const jsonLines = (output: string): Array<JsonLine> =>
  output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      let parsed: unknown
      assert.doesNotThrow(() => {
        parsed = JSON.parse(line)
      }, `not JSON: ${line}`)
      const object = parsed as JsonLine
      assert.isString(object.message, line)
      assert.isString(object.level, line)
      return object
    })

/** A port taken by another listener, for the "in use" error. */
const takenPort = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

describe("NodeCli JSON logs", () => {
  it.live(
    "writes fatal startup errors and usage errors as JSON lines",
    () =>
      Effect.gen(function* () {
        const port = yield* takenPort
        const results = yield* Effect.all(
          [
            runBin(["--log-format", "json", "--port", String(port)]),
            runBin(["--log-format=json", "--max-workers", "ten"]),
            runBin(["--log-format", "json", "--config", "/nonexistent/pool.yaml"]),
            runBin(["--log-format", "json", "--tls-key", bin, "--tls-cert", bin, "--port", "0"])
          ],
          { concurrency: "unbounded" }
        )
        const [inUse, usage, config, tls] = results
        assert.strictEqual(inUse!.code, 1)
        assert.strictEqual(usage!.code, 2)
        assert.strictEqual(config!.code, 2)
        assert.strictEqual(tls!.code, 1)
        for (const result of results) {
          const lines = [...jsonLines(result.stdout), ...jsonLines(result.stderr)]
          assert.isAtLeast(lines.length, 1)
        }
        const [fatal] = jsonLines(inUse!.stderr)
        assert.strictEqual(fatal!.level, "FATAL")
        assert.include(fatal!.message, `cannot listen on 127.0.0.1:${port}: the address is in use`)
        assert.include(jsonLines(usage!.stderr)[0]!.message, `Invalid value for flag --max-workers: "ten"`)
        assert.include(jsonLines(config!.stderr)[0]!.message, "--config")
        assert.include(jsonLines(tls!.stderr)[0]!.message, "cannot use --tls-key")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "the listening lines carry host, port, processes and each setting as fields, with --processes 2 too",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode(
          [bin, "--port", "0", "--processes", "2", "--max-workers", "3", "--clients-deadline", "4s"],
          { env: { POOL_MANAGER_LOG_FORMAT: "json" } }
        )
        yield* child.waitFor(/primary: 2 processes listening/)
        yield* child.waitForAll(/"message":"pool-manager listening on /, 2)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
        const lines = [...jsonLines(child.stdout()), ...jsonLines(child.stderr())]
        const listening = lines.filter((line) => line.message.startsWith("pool-manager listening on "))
        assert.strictEqual(listening.length, 2)
        const port = listening[0]!.annotations.port
        assert.isNumber(port)
        for (const line of listening) {
          assert.strictEqual(line.level, "INFO")
          // The message says where; the settings are fields, not text.
          assert.strictEqual(line.message, `pool-manager listening on 127.0.0.1:${port}`)
          const fields = line.annotations
          assert.deepStrictEqual(
            [fields.host, fields.port, fields.processes, fields["max-workers"], fields["clients-deadline"]],
            ["127.0.0.1", port, 2, 3, "4s"]
          )
          assert.strictEqual(fields["admission-policy"], "reject")
        }
        const primary = lines.find((line) => line.message.includes("primary: 2 processes listening"))
        assert.deepStrictEqual([primary?.annotations.port, primary?.annotations.processes], [port, 2])
      }).pipe(Effect.scoped),
    60_000
  )
})
