/**
 * The command's handler and the rules between its flags
 * (internal/cliCommand.ts), run in the test process: `validate`'s rules with
 * flags and with defaults, `--check` and `--check-config` (valid, invalid,
 * text and JSON), a start that cannot listen (a user error, a JSON line with
 * `--log-format json`), one server answering and stopping, and `--processes`
 * starting a cluster's primary (forks of fixtures/cluster-worker.ts) with the
 * mode, config file and stop timeout the flags give. NodeCli.test.ts runs the
 * command as a child process.
 */
import Cluster from "node:cluster"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { NodeCli } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { bin, configFile, tempDir } from "./utils/cliProcess.ts"
import { type Options, runCommand } from "./utils/command.ts"
import { withStubbedExit } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"
import "./utils/supervisorLoaded.ts"

/** The messages of the rule errors `args` give (`validate`'s, reported as `ShowHelp`). */
const ruleError = (args: ReadonlyArray<string>, options: Partial<Options> = {}) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(runCommand(args, options).effect)
    assert.strictEqual(error._tag, "ShowHelp", args.join(" "))
    return error._tag === "ShowHelp" ? error.errors.map((each) => each.message).join("\n") : ""
  })

const occupiedPort = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

// Servers, and in one test forked processes: seconds under a loaded CI machine, not the default 5 s bound.
describe("NodeCli command", { timeout: 30_000 }, () => {
  beforeAll(() => {
    Cluster.setupPrimary({ exec: Path.join(import.meta.dirname, "fixtures", "cluster-worker.ts"), execArgv: [] })
  })

  it.effect("refuses flags that do not go together, from flags or defaults, naming the flag to add", () =>
    Effect.gen(function* () {
      const needTls = "--tls-client-auth and --tls-ca need TLS: give --tls-key and --tls-cert too"
      const needCa =
        "--tls-client-auth require needs --tls-ca: the CA certificates that sign your clients' certificates"
      const agent = "--agent-port needs --processes 1: each process would report only its own share of the workers"
      const reuse = "--cluster-mode reuseport needs a TCP port: processes share a unix socket (--path) by hand-off"
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Options["defaults"], string]> = [
        [["--tls-client-auth", "require"], undefined, needTls],
        [["--tls-ca", bin], undefined, needTls],
        [[], { tlsClientAuth: "request" }, needTls],
        [["--tls-key", bin, "--tls-cert", bin, "--tls-client-auth", "require"], undefined, needCa],
        [["--tls-key", bin, "--tls-cert", bin], { tlsClientAuth: "require" }, needCa],
        [["--agent-port", "0", "--processes", "2"], undefined, agent],
        [["--agent-port", "0"], { processes: 2 }, agent],
        [["--processes", "2"], { agentPort: 0 }, agent],
        [["--cluster-mode", "reuseport", "--path", "/tmp/x.sock"], undefined, reuse],
        [["--cluster-mode", "reuseport"], { path: "/tmp/x.sock" }, reuse],
        [["--path", "/tmp/x.sock"], { clusterMode: "reuseport" }, reuse]
      ]
      for (const [args, defaults, expected] of cases) {
        assert.strictEqual(
          yield* ruleError(args, { defaults }),
          expected,
          `${args.join(" ")} ${JSON.stringify(defaults)}`
        )
      }
      // The config's own checks name flags, in the text too.
      assert.strictEqual(
        yield* ruleError(["--min-workers", "3", "--max-workers", "1"]),
        "Invalid value for flag --min-workers (minWorkersCount): 3. expected at most --max-workers (1), or --max-workers = 0 for no maximum"
      )
    })
  )

  it.live("--check and --check-config say what is valid, as text or a JSON line, and name a bad file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const good = Path.join(dir, "good.yaml")
      const bad = Path.join(dir, "bad.yaml")
      Fs.writeFileSync(good, "maxWorkersCount: 7\n")
      Fs.writeFileSync(bad, "maxWorkersCount: -7\n")

      const check = runCommand(["--check", "--max-workers", "5"])
      yield* check.effect
      assert.strictEqual(check.out.length, 1)
      assert.match(check.out[0] ?? "", /configuration is valid: .* max-workers=5 /)

      const file = runCommand(["--check-config", good, "--log-format", "json"])
      yield* file.effect
      const line = JSON.parse(file.out[0] ?? "{}")
      assert.strictEqual(line.message, `config file ${good} is valid`)
      assert.deepInclude(line.annotations, { configFile: good, valid: true, "max-workers": 7 })

      // --check reads --config's file, under the flags.
      const config = runCommand(["--check", "--config", good, "--min-workers", "2"])
      yield* config.effect
      assert.match(config.out[0] ?? "", new RegExp(`^.*config file ${good} is valid: .*min-workers=2 max-workers=7 `))

      const invalid = runCommand(["--check-config", bad])
      const error = yield* Effect.flip(invalid.effect)
      assert.strictEqual(error._tag, "UserError")
      assert.match(error.message, new RegExp(`^config file ${bad}: .*maxWorkersCount`))
      // Printed once, by the command line's own error reporting.
      assert.strictEqual(invalid.out.filter((line) => line.includes(error.message)).length, 1, invalid.out.join("\n"))
    }).pipe(Effect.scoped)
  )

  it.live(
    "a start that cannot listen is a user error; with --log-format json, a fatal JSON line and a reported error",
    () =>
      Effect.gen(function* () {
        const port = String(yield* occupiedPort)
        const text = runCommand(["--host", "127.0.0.1", "--port", port])
        const error = yield* Effect.flip(text.effect)
        assert.strictEqual(error._tag, "UserError")
        assert.include(error.message, `127.0.0.1:${port}`)

        const json = runCommand(["--host", "127.0.0.1", "--port", port, "--log-format", "json"])
        const reported = yield* Effect.flip(json.effect)
        assert.strictEqual(reported._tag, "ReportedError")
        assert.strictEqual(reported.message, error.message)
        const fatal = json.out.map((each) => JSON.parse(each)).find((each) => each.level === "FATAL")
        assert.strictEqual(fatal?.message, error.message)
      }).pipe(Effect.scoped)
  )

  it.live("serves with the flags over its config file, and stops when interrupted", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 9\nminWorkersCount: 1\n")
      const server = runCommand(["--host", "127.0.0.1", "--port", "0", "--config", file, "--min-workers", "2"], {
        name: "tested"
      })
      const fiber = yield* Effect.forkChild(server.effect)
      yield* until(() => server.out.some((line) => line.includes("listening")), "the listening line")
      const listening = server.out.find((line) => line.includes("listening")) ?? ""
      assert.match(listening, /tested listening on 127\.0\.0\.1:\d+/)
      assert.match(listening, / min-workers=2 max-workers=9 /)
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(listening)?.[1])
      const client = yield* connect(port)
      yield* client.send("hello\n")
      assert.strictEqual(yield* client.receive(2), "OK")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped)
  )

  it.live("--processes starts a cluster's primary in the mode and with the stop timeout the flags give", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = Path.join(dir, "pool.yaml")
      Fs.writeFileSync(file, "maxWorkersCount: 4\n")
      const events = Path.join(dir, "events")
      Fs.writeFileSync(events, "")
      process.env.FIXTURE_EVENTS = events
      process.env.FIXTURE_BEHAVIOUR = "normal"
      const cases = [
        [["--port", "0"], "reuseport", "40s"],
        [
          ["--path", Path.join(dir, "sock"), "--drain-timeout", "5 seconds", "--shutdown-delay", "2 seconds"],
          "handoff",
          "17s"
        ]
      ] as const
      for (const [args, mode, stopTimeout] of cases) {
        Fs.writeFileSync(events, "")
        const primary = runCommand(["--processes", "2", "--config", file, ...args], { name: "clustered" })
        const fiber = yield* Effect.forkChild(primary.effect)
        const starts = () =>
          Fs.readFileSync(events, "utf8")
            .split("\n")
            .filter((line) => line.includes(" start "))
        yield* until(() => starts().length === 2, "two processes started", "10 seconds")
        for (const start of starts()) assert.include(start, `start mode=${mode} `)
        assert.include(starts()[0], `config=maxWorkersCount: 4\n`.trimEnd())
        assert.isTrue(primary.out.some((line) => line.includes("clustered primary (pid ")))
        yield* Fiber.interrupt(fiber)
        assert.isTrue(
          primary.out.some((line) => line.includes(`stopping 2 processes, waiting up to ${stopTimeout}`)),
          primary.out.join("\n")
        )
      }
    }).pipe(Effect.scoped)
  )

  it.live("run: runs the command on the args given as the main program; a usage error exits with 2", () =>
    withStubbedExit((spies) =>
      Effect.gen(function* () {
        const callback = () => Effect.void
        NodeCli.run({ name: "ran", callback, args: ["--check", "--max-workers", "3"] })
        yield* until(() => spies.log.mock.calls.length > 0, "the check's line")
        assert.match(spies.log.mock.calls[0]?.map(String).join(" ") ?? "", /configuration is valid: .* max-workers=3 /)
        assert.strictEqual(spies.exit.mock.calls.length, 0, "a success ends without process.exit")

        NodeCli.run({ name: "ran", callback, args: ["--no-such-flag"] })
        yield* until(() => spies.exit.mock.calls.length > 0, "the usage error's exit")
        assert.deepStrictEqual(spies.exit.mock.calls[0], [2])
        const printed = spies.error.mock.calls.map((call) => call.map(String).join(" "))
        assert.include(printed.join("\n"), "--no-such-flag")
        assert.include(printed, "Run 'ran --help' for the flags.")
      })
    )
  )
})
