/**
 * The command's checks and what stops it, in this process
 * (internal/cliCommand.ts): `validate` lets a `--path` through unless the
 * mode is `reuseport`, names a default that is no flag as it is and gives
 * each issue its own line; `--check` loads the TLS files it names (a CA file
 * must hold certificates); an error
 * is a JSON line when the defaults ask for JSON logs, but a usage error (a
 * bad `POOL_MANAGER_LOG_LEVEL`) stays a usage error; and the handler alone
 * (without `validate` before it) reports a configuration error as a user
 * error, naming the file it combined. Run inside a caller's span, the valid
 * line is an event of it whose attributes name a config file only when there
 * is one. NodeCli.command.test.ts has the usual
 * paths.
 */

import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Console, Effect, Exit, Option, Tracer } from "effect"
import { GlobalFlag } from "effect/cli"
import { NodeCli, NodeCliConfig } from "../src/index.ts"
import * as CliCommand from "../src/internal/cliCommand.ts"
import { bin, configFile, noFlags } from "./utils/cliProcess.ts"
import { failureOf, runCommand } from "./utils/command.ts"
import { pki } from "./utils/pki.ts"

/** A server's key and certificate, signed by a CA, on disk. */
const pkiFiles = Effect.gen(function* () {
  const { ca, issue } = yield* pki
  return { server: issue(ca("authority"), "server", { server: true }) }
})

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("NodeCli check", () => {
  it.effect("a --path passes validation in every mode but reuseport, and reuseport passes without one", () =>
    Effect.gen(function* () {
      const path = ["--path", "/tmp/pool.sock"]
      const cases = [path, [...path, "--cluster-mode", "handoff"], [...path, "--cluster-mode", "auto"]]
      for (const mode of [...cases, ["--cluster-mode", "reuseport"]]) {
        const check = runCommand(["--check", ...mode])
        const exit = yield* Effect.exit(check.effect)
        assert.isTrue(Exit.isSuccess(exit), `${mode.join(" ")}: ${String(exit)}`)
        assert.match(check.out.join("\n"), /configuration is valid: /, mode.join(" "))
      }
    })
  )

  it.effect("validate names a default that is no flag as it is, and gives each issue its own line", () =>
    Effect.gen(function* () {
      const misspelt = yield* failureOf(NodeCli.validate({ maxWorkers: 10 } as never)(noFlags), "a misspelt default")
      assert.strictEqual(misspelt._tag, "ValidationError")
      assert.match(misspelt.message, /^Invalid value for maxWorkers: 10\. /)
      const two = yield* failureOf(NodeCli.validate({ bufferSize: -1, queueSize: -2 })(noFlags), "two bad defaults")
      const lines = two.message.split("\n")
      assert.strictEqual(lines.length, 2, two.message)
      assert.match(lines[0]!, /^Invalid value for flag --buffer-size \(bufferSize\): -1\. /)
      assert.match(lines[1]!, /^Invalid value for flag --queue-size \(queueSize\): -2\. /)
    })
  )

  it.effect("a default trustedProxies entry that is no address or CIDR fails validate, and the flags throw it", () =>
    Effect.gen(function* () {
      const expected =
        "Invalid value for trustedProxies: 10.0.0.0/99. expected an address or CIDR such as 10.0.0.0/8, 192.0.2.7 or fd00::/8"
      const bad = { trustedProxies: ["192.0.2.7", "10.0.0.0/99"] }
      const error = yield* failureOf(NodeCli.validate(bad)(noFlags), "a bad trustedProxies default")
      assert.strictEqual(error._tag, "ValidationError")
      assert.strictEqual(error.message, expected)
      // Checked whether or not the PROXY protocol is on: a default is a programming error either way, and, as any
      // invalid default, one the command's flags throw when they are made, before any argument is read.
      assert.throws(() => NodeCliConfig.flags(bad), /trustedProxies = 10\.0\.0\.0\/99/)
      yield* NodeCli.validate({ trustedProxies: ["10.0.0.0/8", "::1"] })(noFlags)
    })
  )

  it.effect("--check loads the TLS files it names, and fails on files that are no key and certificate", () =>
    Effect.gen(function* () {
      const check = runCommand(["--check", "--tls-key", bin, "--tls-cert", bin])
      const error = yield* failureOf(check.effect, "--check with bad TLS files")
      assert.strictEqual(error._tag, "UserError")
      assert.include(error.message, `cannot use --tls-key ${bin} and --tls-cert ${bin}: `)
      assert.notInclude(check.out.join("\n"), "is valid")
    })
  )

  it.effect("--check refuses a --tls-ca that holds no certificate, which a start would take as no CA", () =>
    Effect.gen(function* () {
      const { server } = yield* pkiFiles
      const check = runCommand(["--check", "--tls-key", server.keyFile, "--tls-cert", server.certFile, "--tls-ca", bin])
      const error = yield* failureOf(check.effect, "--check with a CA file of garbage")
      assert.strictEqual(error._tag, "UserError")
      assert.include(error.message, `and --tls-ca ${bin}: ca holds no PEM certificate`)
      assert.notInclude(check.out.join("\n"), "is valid")
    }).pipe(Effect.scoped)
  )

  it.effect("an error is one FATAL JSON line when the defaults ask for JSON logs", () =>
    Effect.gen(function* () {
      const check = runCommand(["--check", "--tls-key", bin, "--tls-cert", bin], { defaults: { logFormat: "json" } })
      const error = yield* failureOf(check.effect, "--check with bad TLS files, JSON logs")
      assert.strictEqual(error._tag, "ReportedError")
      const fatal = check.out.map((line) => JSON.parse(line)).filter((line) => line.level === "FATAL")
      assert.deepStrictEqual(
        fatal.map((line) => line.message),
        [error.message]
      )
      assert.include(error.message, "cannot use --tls-key")
    }).pipe(withEnv({}))
  )

  it.effect("a bad POOL_MANAGER_LOG_LEVEL stays a usage error with JSON logs, not a fatal line", () =>
    Effect.gen(function* () {
      const start = runCommand(["--port", "0", "--log-format", "json"])
      const error = yield* failureOf(start.effect.pipe(withEnv({ POOL_MANAGER_LOG_LEVEL: "loud" })), "a bad level")
      assert.strictEqual(error._tag, "ShowHelp")
      assert.include(error._tag === "ShowHelp" ? error.errors[0]?.message : "", "POOL_MANAGER_LOG_LEVEL")
      // The command line's output shows it (with the help); no FATAL line of the handler's.
      assert.isFalse(
        start.out.some((line) => line.includes('"FATAL"')),
        start.out.join("\n")
      )
    })
  )

  it.effect("the handler alone reports a configuration error as a user error, naming the file it combined", () =>
    Effect.gen(function* () {
      const file = yield* configFile("bufferSize: 64\n")
      // Settings `validate` would have refused: the handler still says what is wrong, and where.
      const contradicting = { ...noFlags, minWorkersCount: Option.some(3), maxWorkersCount: Option.some(1) }
      const options = { callback: () => Effect.void }
      const out: Array<string> = []
      const check = (settings: typeof noFlags) =>
        failureOf(CliCommand.handler("pool-manager", options, settings), "the handler").pipe(
          Effect.provideService(Console.Console, { ...console, log: (line: string) => void out.push(line) }),
          Effect.provideService(GlobalFlag.LogLevel, Option.none()),
          Effect.provide(NodeServices.layer)
        )
      const alone = yield* check({ ...contradicting, check: Option.some(true) })
      assert.strictEqual(alone._tag, "UserError")
      assert.match(alone.message, /^Invalid pool manager config: minWorkersCount/)
      const withFile = yield* check({ ...contradicting, checkConfig: Option.some(file) })
      assert.strictEqual(withFile._tag, "UserError")
      assert.strictEqual(withFile.message, `config file ${file}: ${alone.message}`)
      assert.deepStrictEqual(out, [])
    }).pipe(Effect.scoped, withEnv({}))
  )

  it.effect("in a caller's span, the valid line's event names a config file only when there is one", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 3\n")
      const validEvents = (args: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const span = yield* Effect.currentSpan
          yield* runCommand([...args, "--log-format", "json"]).effect
          assert.instanceOf(span, Tracer.NativeSpan)
          return (span as Tracer.NativeSpan).events.filter(([name]) => name.endsWith(" is valid"))
        }).pipe(Effect.withSpan("caller"))
      const [withoutFile] = yield* validEvents(["--check"])
      assert.strictEqual(withoutFile?.[0], "configuration is valid")
      assert.strictEqual(withoutFile?.[2].valid, true)
      assert.isFalse(Object.hasOwn(withoutFile?.[2] ?? {}, "configFile"), "no configFile attribute")
      const [withFile] = yield* validEvents(["--check-config", file])
      assert.strictEqual(withFile?.[2].configFile, file)
    }).pipe(Effect.scoped, withEnv({}))
  )
})
