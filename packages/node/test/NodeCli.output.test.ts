/**
 * What the command prints when it cannot start (internal/cliOutput.ts), in
 * this process: whether JSON was asked for (the last `--log-format` flag
 * wins, else the environment), a usage error as its message and one line
 * pointing at `--help` (or one JSON line), and the exit codes a usage error
 * (2) and a reported fatal error (1) get. NodeCli.test.ts runs the command.
 */
import { assert, describe, it, vi } from "@effect/vitest"
import { ConfigProvider, Console, Effect, Exit, Runtime } from "effect"
import * as CliError from "effect/cli/CliError"
import * as Output from "../src/internal/cliOutput.ts"

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

/** What `effect` writes to stderr, line by line: with console.error, or through Effect's Console (its loggers). */
const stderrOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => vi.spyOn(console, "error").mockImplementation(() => {})),
    (spy) =>
      Effect.map(
        Effect.exit(
          Effect.provideService(effect, Console.Console, { ...console, error: (...args) => console.error(...args) })
        ),
        () => spy.mock.calls.map((call) => call.map(String).join(" "))
      ),
    (spy) => Effect.sync(() => spy.mockRestore())
  )

describe("NodeCli output", () => {
  it.effect("JSON when the last --log-format says json, else when POOL_MANAGER_LOG_FORMAT does", () =>
    Effect.gen(function* () {
      const asked = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
        Output.jsonRequested(args).pipe(withEnv(env))
      assert.isTrue(yield* asked(["--log-format", "json"]))
      assert.isFalse(yield* asked(["--log-format", "text"]))
      assert.isTrue(yield* asked(["--log-format=json"]))
      assert.isFalse(yield* asked(["--log-format=text"]))
      assert.isFalse(yield* asked(["--log-format=json", "--log-format", "text"]))
      assert.isTrue(yield* asked(["--log-format", "text", "--log-format=json"]))
      // A flag, either form, outranks the environment.
      assert.isFalse(yield* asked(["--log-format", "text"], { POOL_MANAGER_LOG_FORMAT: "json" }))
      assert.isFalse(yield* asked(["--log-format=text"], { POOL_MANAGER_LOG_FORMAT: "json" }))
      assert.isTrue(yield* asked([], { POOL_MANAGER_LOG_FORMAT: " json " }))
      assert.isFalse(yield* asked([], { POOL_MANAGER_LOG_FORMAT: "text" }))
      assert.isFalse(yield* asked([]))
    })
  )

  it.effect("a usage error is its message and one line pointing at --help", () =>
    Effect.gen(function* () {
      const error = new CliError.UnrecognizedOption({ option: "--nope", suggestions: [] })
      const lines = yield* stderrOf(
        Output.presenter("pool-manager", false).present({ _tag: "InvalidInvocation", errors: [error] } as never)
      )
      assert.deepStrictEqual(lines, [`pool-manager: ${error.message}`, "Run 'pool-manager --help' for the flags."])
    })
  )

  it.effect("in JSON mode, a usage error is one JSON line naming the help", () =>
    Effect.gen(function* () {
      const error = new CliError.UnrecognizedOption({ option: "--nope", suggestions: [] })
      const lines = yield* stderrOf(
        Output.presenter("pool-manager", true).present({ _tag: "InvalidInvocation", errors: [error] } as never)
      )
      assert.strictEqual(lines.length, 1)
      const line = JSON.parse(lines[0]!) as { message: unknown; level: string; annotations: Record<string, unknown> }
      assert.strictEqual(line.level, "FATAL")
      assert.deepStrictEqual(line.annotations, { help: "pool-manager --help" })
      assert.include(JSON.stringify(line.message), error.message)
    })
  )

  it.effect("a usage error exits with 2; a reported fatal error with 1, not printed again", () =>
    Effect.gen(function* () {
      const usage = new CliError.ShowHelp({
        commandPath: ["pool-manager"],
        errors: [new CliError.UnrecognizedOption({ option: "--nope", suggestions: [] })]
      })
      const exit = yield* Effect.exit(Output.withOperatorOutput("pool-manager", [])(Effect.fail(usage)))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual((usage as unknown as Record<string, unknown>)[Runtime.errorExitCode], 2)
      // Help asked for (no errors) is not a usage error.
      const help = new CliError.ShowHelp({ commandPath: ["pool-manager"], errors: [] })
      yield* Effect.exit(Output.withOperatorOutput("pool-manager", [])(Effect.fail(help)))
      assert.strictEqual((help as unknown as Record<string, unknown>)[Runtime.errorExitCode], 0)
      // Other errors keep their exit code: a CLI error that is not ShowHelp, and an error merely tagged like it.
      const other = new CliError.UnrecognizedOption({ option: "--nope", suggestions: [] })
      const otherExit = yield* Effect.exit(Output.withOperatorOutput("pool-manager", [])(Effect.fail(other)))
      assert.isTrue(Exit.isFailure(otherExit) && Exit.findErrorOption(otherExit)._tag === "Some")
      assert.isUndefined((other as unknown as Record<string, unknown>)[Runtime.errorExitCode])
      const lookalike = { _tag: "ShowHelp", errors: [other] }
      yield* Effect.exit(Output.withOperatorOutput("pool-manager", [])(Effect.fail(lookalike)))
      assert.isUndefined((lookalike as Record<string, unknown>)[Runtime.errorExitCode])
      const reported = new Output.ReportedError({ message: "port in use" })
      assert.strictEqual(reported[Runtime.errorExitCode], 1)
      assert.isFalse(reported[Runtime.errorReported])
      const user = Output.userError({ message: "cannot read /etc/pool.yaml" })
      assert.strictEqual(user.message, "cannot read /etc/pool.yaml")
    }).pipe(withEnv({}))
  )
})
