/**
 * Every flag as a `POOL_MANAGER_<FLAG>` environment variable: read through
 * Effect's `ConfigProvider`, parsed by the flag's own parser, with errors
 * naming the variable, and the precedence flag > environment > config file >
 * default, at start and on a reload.
 */

import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option, Result, Schedule } from "effect"
import { envName, logLevelFromEnv } from "../src/internal/cliEnv.ts"
import { poolFlags } from "../src/internal/cliFlags.ts"
import { serverFlags } from "../src/internal/serverFlags.ts"
import { connect } from "./utils/client.ts"
import { bin, runBin, spawnNode, tempDir } from "./utils/cliProcess.ts"
import { parseFlags as parse } from "./utils/flags.ts"

/** A port free a moment ago (bound on 0, then released). */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

// Values that some flag takes; each flag is tried with the first its own parser accepts.
const candidates = [
  "1",
  "0.5",
  "1s",
  "127.0.0.1",
  "queue",
  "json",
  "handoff",
  "true",
  "lines",
  "request",
  "TLSv1.3",
  "http://127.0.0.1:4318",
  bin
]

const allFlags = [...Object.values(poolFlags), ...Object.values(serverFlags)].map((row) => row.name)

describe("NodeCli environment", () => {
  it.effect("derives a variable for every flag of the tables, which sets what the flag sets", () =>
    Effect.gen(function* () {
      assert.strictEqual(envName("max-workers"), "POOL_MANAGER_MAX_WORKERS")
      assert.isAbove(allFlags.length, 30)
      for (const name of allFlags) {
        if (name === "check-config" || name === "check") continue
        let matched = false
        for (const value of candidates) {
          const byFlag = yield* parse([`--${name}`, value])
          if (byFlag.settings === undefined) continue
          const byEnv = yield* parse([], { [envName(name)]: value })
          assert.isDefined(byEnv.settings, `${envName(name)}=${value}: ${byEnv.error}`)
          const given = Object.entries(byFlag.settings as Record<string, Option.Option<unknown>>).filter(([, v]) =>
            Option.isSome(v)
          )
          assert.strictEqual(given.length, 1, `--${name} ${value}`)
          const [key, expected] = given[0]!
          assert.deepStrictEqual(
            (byEnv.settings as Record<string, unknown>)[key],
            expected,
            `${envName(name)}=${value}`
          )
          matched = true
          break
        }
        assert.isTrue(matched, `no candidate value parses for --${name}`)
      }
      // An action is not a setting: a variable left in an environment must not stop the server from serving.
      const check = yield* parse([], { POOL_MANAGER_CHECK_CONFIG: bin, POOL_MANAGER_CHECK: "true" })
      assert.isTrue(Option.isNone(check.settings!.checkConfig))
      assert.isTrue(Option.isNone(check.settings!.check))
    })
  )

  it.effect("takes the flag over the variable, and names the variable when its value is bad", () =>
    Effect.gen(function* () {
      const both = yield* parse(["--max-workers", "7"], { POOL_MANAGER_MAX_WORKERS: "3", POOL_MANAGER_QUEUE_SIZE: "9" })
      assert.deepStrictEqual(both.settings!.maxWorkersCount, Option.some(7))
      assert.deepStrictEqual(both.settings!.queueSize, Option.some(9))
      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ POOL_MANAGER_MAX_WORKERS: "ten" }, `Invalid value for environment variable POOL_MANAGER_MAX_WORKERS: "ten"`],
        [
          { POOL_MANAGER_CLIENTS_DEADLINE: "5" },
          'POOL_MANAGER_CLIENTS_DEADLINE: "5". Expected: a duration with a unit'
        ],
        [{ POOL_MANAGER_ADMISSION_POLICY: "maybe" }, "POOL_MANAGER_ADMISSION_POLICY"],
        [{ POOL_MANAGER_CONFIG: "/nonexistent/pool.yaml" }, "POOL_MANAGER_CONFIG"],
        [{ POOL_MANAGER_PORT: "70000" }, "POOL_MANAGER_PORT"],
        [{ POOL_MANAGER_DEBUG: "sometimes" }, "POOL_MANAGER_DEBUG"]
      ]
      for (const [env, expected] of cases) {
        const result = yield* parse([], env)
        assert.include(result.error ?? "parsed", expected, JSON.stringify(env))
      }
      // An empty variable is not set (how unit files and shells unset one), blanks too; blanks around a value go.
      const empty = yield* parse([], { POOL_MANAGER_MAX_WORKERS: "" })
      assert.isTrue(Option.isNone(empty.settings!.maxWorkersCount))
      const blank = yield* parse([], { POOL_MANAGER_MAX_WORKERS: "  " })
      assert.isTrue(Option.isNone(blank.settings!.maxWorkersCount))
      const padded = yield* parse([], { POOL_MANAGER_MAX_WORKERS: " 7 " })
      assert.deepStrictEqual(padded.settings!.maxWorkersCount, Option.some(7))
      // What the flag's parser expects, once, after the value as it was given.
      const choice = yield* parse([], { POOL_MANAGER_ADMISSION_POLICY: "maybe" })
      assert.match(
        choice.error ?? "",
        /^Invalid value for environment variable POOL_MANAGER_ADMISSION_POLICY: "maybe"\. Expected: [^E]*$/
      )
      // Also when the parser's own words start with "Expected".
      const number = yield* parse([], { POOL_MANAGER_MAX_WORKERS: "ten" })
      assert.strictEqual(
        number.error,
        `Invalid value for environment variable POOL_MANAGER_MAX_WORKERS: "ten". Expected: a string representing a finite number`
      )
      // The parser's words after "Expected" are left whole, even a path with "Expected" in it.
      const file = yield* parse([], { POOL_MANAGER_TLS_CA: "/nonexistent/Expected/ca.pem" })
      assert.strictEqual(
        file.error,
        `Invalid value for environment variable POOL_MANAGER_TLS_CA: "/nonexistent/Expected/ca.pem". Expected: Path does not exist: /nonexistent/Expected/ca.pem`
      )
      const framing = yield* parse([], { POOL_MANAGER_FRAMING: "frames" })
      assert.match(
        framing.error ?? "",
        /^Invalid value for environment variable POOL_MANAGER_FRAMING: "frames"\. Expected: expected "go", "lines\[:MAX\]/
      )
    })
  )

  it.effect("names the variable a program's own config provider cannot read", () =>
    Effect.gen(function* () {
      // A provider that fails (a secrets store out of reach, say), where the environment never does.
      const unreachable = ConfigProvider.make(() =>
        Effect.fail(new ConfigProvider.SourceError({ message: "the store is out of reach" }))
      )
      // A usage error naming the variable, not a defect of its own.
      const exit = yield* Effect.exit(parse([], unreachable))
      assert.isTrue(Exit.isSuccess(exit), `cannot read the provider: a usage error, not ${String(exit)}`)
      const result = yield* exit
      assert.match(result.error ?? "parsed", /^cannot read POOL_MANAGER_[A-Z_]+: .*the store is out of reach/)
    })
  )

  it.live(
    "applies flag > environment > config file > default, at start and on SIGHUP",
    () =>
      Effect.gen(function* () {
        const file = Path.join(yield* tempDir, "pool.yaml")
        Fs.writeFileSync(file, "maxWorkersCount: 5\nqueueSize: 11\nqueueTimeout: 2s\n")
        const child = yield* spawnNode([bin, "--port", "0", "--queue-timeout", "4s"], {
          env: { POOL_MANAGER_CONFIG: file, POOL_MANAGER_MAX_WORKERS: "2", POOL_MANAGER_QUEUE_TIMEOUT: "3s" }
        })
        // max-workers from the environment over the file; queue-size from the file over the default;
        // queue-timeout from the flag over both.
        const line = (yield* child.waitFor(/listening on .*/))[0]
        assert.match(line, / max-workers=2 .*queue-size=11 queue-timeout=4s /)
        assert.match(line, / idle-worker-timeout=2s /)

        Fs.writeFileSync(file, "maxWorkersCount: 9\nqueueSize: 12\n")
        child.process.kill("SIGHUP")
        const reloaded = (yield* child.waitFor(/config reloaded from .*/))[0]
        assert.match(reloaded, / max-workers=2 .*queue-size=12 queue-timeout=4s /)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "reads --log-level, Effect's own flag, from POOL_MANAGER_LOG_LEVEL too",
    () =>
      Effect.gen(function* () {
        const bad = yield* spawnNode([bin], { env: { POOL_MANAGER_LOG_LEVEL: "loud" } })
        assert.strictEqual(yield* bad.exit(), 2)
        assert.include(bad.stderr(), `environment variable POOL_MANAGER_LOG_LEVEL: "loud"`)
        // At Warn, the Info line saying where it listens is not written; the server serves all the same.
        const port = yield* freePort
        const quiet = yield* spawnNode([bin, "--port", String(port)], { env: { POOL_MANAGER_LOG_LEVEL: "warn" } })
        // Connecting until it listens (up to 10 s).
        const client = yield* Effect.retry(connect(port), { times: 200, schedule: Schedule.spaced("50 millis") })
        yield* client.send("HI!")
        assert.strictEqual(yield* client.receive(2), "OK")
        quiet.process.kill("SIGTERM")
        assert.strictEqual(yield* quiet.exit(), 0)
        assert.strictEqual(quiet.stdout(), "")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "exits 2 with one line naming a bad variable and one pointing at --help",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin], {
          env: { POOL_MANAGER_BUSY_REPLY: "FULL", POOL_MANAGER_MAX_WORKERS: "ten" }
        })
        assert.strictEqual(yield* child.exit(), 2)
        assert.deepStrictEqual(child.stderr().trim().split("\n"), [
          `pool-manager: Invalid value for environment variable POOL_MANAGER_MAX_WORKERS: "ten". Expected: a string representing a finite number`,
          "Run 'pool-manager --help' for the flags."
        ])
        assert.strictEqual(child.stdout(), "")
        const help = yield* runBin(["--help"])
        assert.include(help.stdout, "POOL_MANAGER_<FLAG>")
        assert.include(help.stdout, "Precedence: flag > environment > config file")
      }).pipe(Effect.scoped),
    60_000
  )

  it.effect(
    "--log-level from POOL_MANAGER_LOG_LEVEL: a level, unset when blank, a usage error of the command when bad",
    () =>
      Effect.gen(function* () {
        const level = (env: Record<string, string>) =>
          Effect.result(
            logLevelFromEnv("tested").pipe(
              Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
            )
          )
        const debug = yield* level({ POOL_MANAGER_LOG_LEVEL: "debug" })
        assert.deepStrictEqual(debug, Result.succeed(Option.some("Debug")))
        assert.deepStrictEqual(yield* level({}), Result.succeed(Option.none()))
        assert.deepStrictEqual(yield* level({ POOL_MANAGER_LOG_LEVEL: " " }), Result.succeed(Option.none()))
        const bad = yield* level({ POOL_MANAGER_LOG_LEVEL: "loud" })
        assert.isTrue(Result.isFailure(bad))
        if (Result.isFailure(bad)) {
          assert.strictEqual(bad.failure._tag, "ShowHelp")
          assert.deepStrictEqual(bad.failure.commandPath, ["tested"])
          assert.match(
            bad.failure.errors.map((error) => error.message).join("\n"),
            /^Invalid value for environment variable POOL_MANAGER_LOG_LEVEL: "loud"\. Expected: "all" \| "trace"/
          )
        }
      }).pipe(Effect.provide(NodeServices.layer))
  )
})
