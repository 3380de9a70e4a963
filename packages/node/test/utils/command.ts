/**
 * The `pool-manager` command run in the test process (`Command.runWith`), so
 * the code it runs is what mutation testing judges: what it printed (its
 * loggers and the command line's error reporting write through Effect's
 * `Console`) beside the effect that runs it. test/utils/cliProcess.ts runs it
 * as a child process.
 */
import { NodeServices } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import { Console, Effect, Exit, Fiber, Option } from "effect"
import { Command } from "effect/cli"
import { NodeCli } from "../../src/index.ts"
import { until } from "./socketPair.ts"

/** The options of `NodeCli.command` a test gives (the callback answers `OK` unless given). */
export type Options = NodeCli.Options<never, never>

/** The command on `args`: `out` fills with every line it prints while `effect` runs. */
export const runCommand = (args: ReadonlyArray<string>, options: Partial<Options> = {}) => {
  const out: Array<string> = []
  const write = (...parts: ReadonlyArray<unknown>) => void out.push(parts.map(String).join(" "))
  const command = NodeCli.command({ callback: (conn) => Effect.ignore(conn.write("OK")), ...options })
  const effect = Command.runWith(command, { version: "test" })(args).pipe(
    Effect.provideService(Console.Console, { ...console, log: write, error: write, info: write, warn: write }),
    Effect.provide(NodeServices.layer)
  )
  return { out, effect }
}

/**
 * The command on `args` forked, once it logged its listening line: what it
 * printed, its fiber (interrupt it to stop the server), the line and the port.
 */
export const startCommand = (args: ReadonlyArray<string>, options: Partial<Options> = {}) =>
  Effect.gen(function* () {
    const { out, effect } = runCommand(args, options)
    const fiber = yield* Effect.forkChild(effect)
    const line = () => out.find((each) => each.includes(" listening on "))
    yield* until(() => line() !== undefined, "the listening line")
    const listening = line() ?? ""
    return { out, fiber, listening, port: Number(/127\.0\.0\.1:(\d+)/.exec(listening)?.[1]) }
  })

/**
 * The error `effect` fails with; an assertion naming `what` if it succeeds or
 * dies instead. Run in a fiber of its own, so that even a defect that ends
 * its fiber at once (a value that is not an effect) is seen as its exit.
 */
export const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  Effect.gen(function* () {
    const exit = yield* Fiber.await(yield* Effect.forkChild(effect))
    const error = Exit.findErrorOption(exit)
    if (Option.isNone(error)) return assert.fail(`${what}: expected a failure, got ${String(exit)}`)
    return error.value
  })
