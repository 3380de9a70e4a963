/**
 * The process signal listener a test's code installed, found by what was not
 * there before: tests call it directly rather than sending a real signal,
 * which would reach the test runner's own listeners too.
 */
import { assert } from "@effect/vitest"

/** The one listener of `signal` added since `before` was taken (`process.listeners(signal)`). */
export const installedListener = (signal: NodeJS.Signals, before: ReadonlyArray<unknown>) => {
  const added = process.listeners(signal).filter((listener) => !before.includes(listener))
  assert.strictEqual(added.length, 1, `one ${signal} listener installed`)
  return added[0] as () => void
}
