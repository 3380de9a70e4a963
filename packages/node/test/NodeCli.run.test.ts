/**
 * `NodeCli.run` as the main program, in this process (with `process.exit`
 * and the console stubbed): the version it prints when none is given, the
 * name its usage errors use when none is given, `--log-format json` among the
 * `args` given making a usage error a JSON line, and, without `args`, the
 * arguments of `process.argv` after the script: both what the command parses
 * and what its output reads. NodeCli.command.test.ts runs it on `args` too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeCli } from "../src/index.ts"
import { type Stubs, withStubbedExit } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

const callback = () => Effect.void

const printed = (spy: Stubs["log"] | Stubs["error"]) => spy.mock.calls.map((call) => call.map(String).join(" "))

/** `use` with `process.argv` set to `argv` (the script's path and arguments after Node's own path). */
const withArgv = <A, E, R>(argv: ReadonlyArray<string>, use: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = process.argv
      process.argv = [process.execPath, ...argv]
      return saved
    }),
    () => use,
    (saved) =>
      Effect.sync(() => {
        process.argv = saved
      })
  )

describe("NodeCli run", () => {
  it.live("without a version, --version prints 0.1.0", () =>
    withStubbedExit((stubs) =>
      Effect.gen(function* () {
        NodeCli.run({ callback, args: ["--version"] })
        yield* until(() => stubs.log.mock.calls.length > 0, "the version's line")
        assert.include(printed(stubs.log).join("\n"), "0.1.0")
        assert.deepStrictEqual(stubs.exit.mock.calls, [])
      })
    )
  )

  it.live("without a name, a usage error points at pool-manager --help", () =>
    withStubbedExit((stubs) =>
      Effect.gen(function* () {
        NodeCli.run({ callback, args: ["--no-such-flag"] })
        yield* until(() => stubs.exit.mock.calls.length > 0, "the usage error's exit")
        assert.deepStrictEqual(stubs.exit.mock.calls, [[2]])
        assert.include(printed(stubs.error), "Run 'pool-manager --help' for the flags.")
      })
    )
  )

  it.live("--log-format json among the args given makes a usage error one JSON line", () =>
    withStubbedExit((stubs) =>
      Effect.gen(function* () {
        NodeCli.run({ name: "ran", callback, args: ["--log-format", "json", "--no-such-flag"] })
        yield* until(() => stubs.exit.mock.calls.length > 0, "the usage error's exit")
        assert.deepStrictEqual(stubs.exit.mock.calls, [[2]])
        const lines = printed(stubs.error)
        assert.strictEqual(lines.length, 1, lines.join("\n"))
        const line = JSON.parse(lines[0]!)
        assert.strictEqual(line.level, "FATAL")
        assert.deepStrictEqual(line.annotations, { help: "ran --help" })
      })
    )
  )

  it.live("without args, the command runs on process.argv after the script", () =>
    withStubbedExit((stubs) =>
      withArgv(
        ["/srv/server.js", "--version"],
        Effect.gen(function* () {
          NodeCli.run({ callback, version: "7.7.7" })
          yield* until(() => stubs.log.mock.calls.length > 0, "the version's line")
          assert.include(printed(stubs.log).join("\n"), "7.7.7")
          assert.deepStrictEqual(stubs.exit.mock.calls, [])
        })
      )
    )
  )

  it.live("without args, the output reads the arguments the command parses, not the script's path", () =>
    withStubbedExit((stubs) =>
      // As `node -e <code> --log-format json --no-such-flag` sets it: the command parses `json --no-such-flag`.
      withArgv(
        ["--log-format", "json", "--no-such-flag"],
        Effect.gen(function* () {
          NodeCli.run({ name: "ran", callback })
          yield* until(() => stubs.exit.mock.calls.length > 0, "the usage error's exit")
          assert.deepStrictEqual(stubs.exit.mock.calls, [[2]])
          // The --log-format the command never saw does not make the output JSON.
          assert.include(printed(stubs.error), "Run 'ran --help' for the flags.")
        })
      )
    )
  )
})
