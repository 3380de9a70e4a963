/**
 * The process signal listener a test's code installed, found by what was not
 * there before: tests call it directly rather than sending a real signal,
 * which would reach the test runner's own listeners too. And what a test of
 * the main program needs: a fresh copy of the signals module, and
 * `process.exit` and the console stubbed.
 */
import { assert, type MockInstance, vi } from "@effect/vitest"
import { Effect } from "effect"

/** The one listener of `signal` added since `before` was taken (`process.listeners(signal)`). */
export const installedListener = (signal: NodeJS.Signals, before: ReadonlyArray<unknown>) => {
  const added = process.listeners(signal).filter((listener) => !before.includes(listener))
  assert.strictEqual(added.length, 1, `one ${signal} listener installed`)
  return added[0] as () => void
}

/**
 * A copy of internal/signals.ts with its process-wide state new (no stop
 * signal seen yet). Loading it in the test also means its functions are
 * defined while the test runs, which is what lets a mutation run reach their
 * definitions.
 */
export const freshSignals = Effect.promise(() => {
  vi.resetModules()
  return import("../../src/internal/signals.ts")
})

/** The stubs of `withStubbedExit`: what the program printed, and the codes it exited with. */
export interface Stubs {
  readonly log: MockInstance<typeof console.log>
  readonly error: MockInstance<typeof console.error>
  readonly exit: MockInstance<typeof process.exit>
}

/**
 * Runs `use` with `process.exit`, `console.log` and `console.error` stubbed
 * (each call recorded, nothing printed, the process kept), for a main
 * program (`runMain`, `NodeCli.run`) run in the test; restored afterwards.
 */
export const withStubbedExit = <A, E, R>(use: (stubs: Stubs) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(
      (): Stubs => ({
        log: vi.spyOn(console, "log").mockImplementation(() => {}),
        error: vi.spyOn(console, "error").mockImplementation(() => {}),
        exit: vi.spyOn(process, "exit").mockImplementation((() => {}) as never)
      })
    ),
    use,
    (stubs) =>
      Effect.sync(() => {
        stubs.log.mockRestore()
        stubs.error.mockRestore()
        stubs.exit.mockRestore()
      })
  )
