/**
 * The one place the server's signal listeners live (internal/signals.ts), in
 * this process: a process listener exists only while something subscribed,
 * each subscriber gets every signal it asked for until its scope ends, the
 * first SIGINT or SIGTERM is remembered as the one that started the stop, and
 * a wait for the next stop signal ends on one or at its bound. The listeners
 * are called directly, not through a real signal (which would reach the test
 * runner's own listeners too); NodeCli.signals.test.ts sends real ones to the
 * command.
 */
import { assert, describe, it, vi } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as Signals from "../src/internal/signals.ts"
import { freshSignals, installedListener, withStubbedExit } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

class Marker extends Context.Service<Marker, string>()("test/Marker") {}

describe("NodeCli signal dispatch", () => {
  it("installs one process listener while anybody subscribes, and removes it after the last", () => {
    const before = process.listeners("SIGHUP")
    const seen: Array<string> = []
    const first = Signals.subscribe("SIGHUP", (signal) => seen.push(`first ${signal}`))
    const second = Signals.subscribe("SIGHUP", (signal) => seen.push(`second ${signal}`))
    const listener = installedListener("SIGHUP", before)
    listener()
    assert.deepStrictEqual(seen, ["first SIGHUP", "second SIGHUP"])
    first()
    assert.strictEqual(process.listenerCount("SIGHUP"), before.length + 1)
    listener()
    assert.deepStrictEqual(seen, ["first SIGHUP", "second SIGHUP", "second SIGHUP"])
    second()
    assert.strictEqual(process.listenerCount("SIGHUP"), before.length)
  })

  it.effect("on: every signal asked for reaches the handler until the scope closes; the first stop is remembered", () =>
    Effect.gen(function* () {
      const before = { SIGINT: process.listeners("SIGINT"), SIGTERM: process.listeners("SIGTERM") }
      const seen: Array<Signals.Signal> = []
      const scope = yield* Scope.make()
      yield* Scope.provide(
        Signals.on(["SIGINT", "SIGTERM"], (signal) => seen.push(signal)),
        scope
      )
      const sigterm = installedListener("SIGTERM", before.SIGTERM)
      const sigint = installedListener("SIGINT", before.SIGINT)
      assert.isUndefined(Signals.stopSignal())
      const start = Date.now()
      sigterm()
      sigint()
      assert.deepStrictEqual(seen, ["SIGTERM", "SIGINT"])
      const stop = Signals.stopSignal()
      assert.strictEqual(stop?.signal, "SIGTERM")
      assert.isAtLeast(stop!.at, start)
      assert.isAtMost(stop!.at, Date.now())
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(process.listenerCount("SIGTERM"), before.SIGTERM.length)
      assert.strictEqual(process.listenerCount("SIGINT"), before.SIGINT.length)
    })
  )

  it.live("onSighup runs its effect in the caller's context on each SIGHUP", () =>
    Effect.gen(function* () {
      const before = process.listeners("SIGHUP")
      const ran: Array<string> = []
      yield* Signals.onSighup(
        Effect.gen(function* () {
          ran.push(yield* Marker)
        })
      ).pipe(Effect.provideService(Marker, "the caller's"))
      const listener = installedListener("SIGHUP", before)
      listener()
      listener()
      yield* Effect.sleep("10 millis")
      assert.deepStrictEqual(ran, ["the caller's", "the caller's"])
    }).pipe(Effect.scoped)
  )

  it.live("nextStopSignal ends on the next stop signal, or at its bound, and leaves no listener", () =>
    Effect.gen(function* () {
      const before = process.listeners("SIGINT")
      const sigterms = process.listenerCount("SIGTERM")
      const waiting = yield* Effect.forkChild(Signals.nextStopSignal(60_000))
      yield* Effect.sleep("10 millis")
      installedListener("SIGINT", before)()
      const exit = yield* Fiber.await(waiting).pipe(Effect.timeout("1 second"))
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(process.listenerCount("SIGINT"), before.length)

      const started = Date.now()
      yield* Signals.nextStopSignal(100)
      assert.isAtLeast(Date.now() - started, 95)
      assert.strictEqual(process.listenerCount("SIGINT"), before.length)
      assert.strictEqual(process.listenerCount("SIGTERM"), sigterms)
    })
  )

  it.live(
    "runMain holds SIGHUP while its program runs, logs a SIGHUP nothing reloads, and exits no process by itself",
    () =>
      Effect.gen(function* () {
        const fresh = yield* freshSignals
        const exits = vi.spyOn(process, "exit").mockImplementation(() => undefined as never)
        const logs = vi.spyOn(console, "log").mockImplementation(() => {})
        const before = process.listeners("SIGHUP")
        const done = yield* Deferred.make<void>()
        fresh.runMain(
          Effect.gen(function* () {
            installedListener("SIGHUP", before)()
            yield* Effect.sleep("20 millis")
          }).pipe(Effect.ensuring(Deferred.done(done, Exit.void)))
        )
        yield* Deferred.await(done)
        yield* until(() => process.listenerCount("SIGHUP") === before.length, "SIGHUP to be released")
        const printed = logs.mock.calls.flat().map(String).join("\n")
        logs.mockRestore()
        exits.mockRestore()
        assert.include(printed, "SIGHUP: nothing to reload (no --config, no TLS files)")
        assert.deepStrictEqual(exits.mock.calls, [])
        assert.isUndefined(fresh.stopSignal())
      })
  )

  it.live("runMain: the first SIGINT interrupts the program, which exits with process.exitCode, or 0", () =>
    Effect.gen(function* () {
      const exits = vi.spyOn(process, "exit").mockImplementation(() => undefined as never)
      try {
        for (const exitCode of [3, undefined]) {
          const fresh = yield* freshSignals
          const before = process.listeners("SIGINT")
          process.exitCode = exitCode
          fresh.runMain(Effect.never)
          installedListener("SIGINT", before)()
          yield* until(() => exits.mock.calls.length > 0, "the program to exit")
          assert.deepStrictEqual(exits.mock.calls, [[exitCode ?? 0]])
          assert.strictEqual(fresh.stopSignal()?.signal, "SIGINT")
          assert.strictEqual(process.listenerCount("SIGINT"), before.length)
          exits.mockClear()
        }
      } finally {
        process.exitCode = undefined
        exits.mockRestore()
      }
    })
  )

  it.live("runMain: a program that fails with no stop signal exits with 1 after Effect reports it", () =>
    withStubbedExit(({ exit, error, log }) =>
      Effect.gen(function* () {
        const fresh = yield* freshSignals
        fresh.runMain(Effect.fail(new Error("the config file is broken")))
        yield* until(() => exit.mock.calls.length > 0, "the program to exit")
        assert.deepStrictEqual(exit.mock.calls, [[1]])
        const lines = [error, log].flatMap((spy) => spy.mock.calls.flat().map(String)).join("\n")
        assert.include(lines, "the config file is broken")
      })
    )
  )
})
