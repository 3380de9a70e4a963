/**
 * Edges of the command's process plumbing, in this process: `--version` is
 * printed by Effect's own presenter (only usage errors are the command's
 * words), an environment that cannot be read asks for text logs, a wait for
 * the next stop signal that is interrupted leaves no listener and no timer
 * behind, and a program that interrupts itself with no stop signal exits 130
 * (only a stop signal's interruption is a clean exit). NodeCli.output and
 * NodeCli.signalDispatch test the usual paths.
 */
import { assert, describe, it, vi } from "@effect/vitest"
import { ConfigProvider, Console, Effect, Exit, Fiber } from "effect"
import * as Output from "../src/internal/cliOutput.ts"
import { referencedTimers } from "./utils/resources.ts"
import { freshSignals, installedListener, withStubbedExit } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

describe("NodeCli edges", () => {
  it.effect("--version is printed as Effect prints it, not as a usage error", () =>
    Effect.acquireUseRelease(
      Effect.sync(() => ({
        log: vi.spyOn(console, "log").mockImplementation(() => {}),
        error: vi.spyOn(console, "error").mockImplementation(() => {})
      })),
      (spies) =>
        Effect.gen(function* () {
          const exit = yield* Output.presenter("pool-manager", false)
            .present({ _tag: "Version", name: "pool-manager", version: "9.8.7" })
            .pipe(
              Effect.exit,
              Effect.provideService(Console.Console, {
                ...console,
                log: (...args) => console.log(...args),
                error: (...args) => console.error(...args)
              })
            )
          assert.isTrue(Exit.isSuccess(exit), "presented")
          const printed = spies.log.mock.calls.flat().map(String).join("\n")
          assert.include(printed, "9.8.7")
          assert.deepStrictEqual(spies.error.mock.calls, [])
        }),
      (spies) =>
        Effect.sync(() => {
          spies.log.mockRestore()
          spies.error.mockRestore()
        })
    )
  )

  it.effect("an environment that cannot be read asks for text logs", () =>
    Effect.gen(function* () {
      const unreadable = ConfigProvider.make(() =>
        Effect.fail(new ConfigProvider.SourceError({ message: "the store is out of reach" }))
      )
      const json = yield* Output.jsonRequested([]).pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, unreadable)
      )
      assert.strictEqual(json, false)
    })
  )

  it.live("an interrupted wait for the next stop signal leaves no listener and no timer", () =>
    Effect.gen(function* () {
      const listeners = { SIGINT: process.listenerCount("SIGINT"), SIGTERM: process.listenerCount("SIGTERM") }
      const Signals = yield* freshSignals
      const waiting = yield* Effect.forkChild(Signals.nextStopSignal(60_000))
      yield* until(() => process.listenerCount("SIGINT") === listeners.SIGINT + 1, "the wait's SIGINT listener")
      const during = referencedTimers()
      yield* Fiber.interrupt(waiting)
      assert.deepStrictEqual(
        { SIGINT: process.listenerCount("SIGINT"), SIGTERM: process.listenerCount("SIGTERM") },
        listeners
      )
      assert.isBelow(referencedTimers(), during, "the wait's timer is cleared")
    })
  )

  it.live("runMain: a program that interrupts itself, with no stop signal, exits 130", () =>
    withStubbedExit(({ exit }) =>
      Effect.gen(function* () {
        const fresh = yield* freshSignals
        fresh.runMain(Effect.interrupt)
        yield* until(() => exit.mock.calls.length > 0, "the program to exit", "1 second")
        assert.deepStrictEqual(exit.mock.calls, [[130]])
        assert.isUndefined(fresh.stopSignal())
      })
    )
  )

  it.live("a fresh copy's on and onSighup subscribe until their scope closes", () =>
    Effect.gen(function* () {
      const Signals = yield* freshSignals
      const before = { SIGHUP: process.listeners("SIGHUP"), SIGTERM: process.listeners("SIGTERM") }
      const seen: Array<string> = []
      yield* Signals.on("SIGTERM", (signal) => seen.push(signal))
      yield* Signals.onSighup(Effect.sync(() => seen.push("reload")))
      installedListener("SIGTERM", before.SIGTERM)()
      installedListener("SIGHUP", before.SIGHUP)()
      yield* until(() => seen.length === 2, "both handlers", "1 second")
      assert.deepStrictEqual(seen, ["SIGTERM", "reload"])
    }).pipe(Effect.scoped)
  )
})
