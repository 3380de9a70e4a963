/**
 * Expected errors (`Connection.failure`, a busy pool's refusal) are built
 * without a stack trace by lowering `Error.stackTraceLimit` for the moment:
 * the limit is put back afterwards, and where it cannot be written (frozen
 * intrinsics, as under SES) the error is built with its stack instead of
 * the write throwing.
 */
import { assert, describe, it, vi } from "@effect/vitest"
import { Connection } from "../src/index.ts"

describe("errors without a stack trace", () => {
  it("lower Error.stackTraceLimit while they are built, and put it back", () => {
    const before = Error.stackTraceLimit
    Error.stackTraceLimit = 13
    try {
      const error = Connection.failure("Closed", "10.0.0.7:40000")
      assert.strictEqual(Error.stackTraceLimit, 13)
      // No frames: the stack is the message line alone.
      assert.notInclude(error.stack ?? "", "\n    at ")
    } finally {
      Error.stackTraceLimit = before
    }
  })

  // Where intrinsics are frozen, and in other engines and sandboxes, the limit
  // is defined differently; the module loads and builds its errors under each
  // (a fresh copy of it, which checks writability when it loads).
  const underLimit = async (define: () => void, check: (error: Error) => void) => {
    const descriptor = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")!
    define()
    try {
      vi.resetModules()
      const Fresh = await import("../src/Connection.ts")
      const error = Fresh.failure("Closed", "10.0.0.7:40000")
      assert.strictEqual(error.reason, "Closed")
      check(error)
    } finally {
      Object.defineProperty(Error, "stackTraceLimit", descriptor)
      vi.resetModules()
    }
  }

  it("build the error with its stack where Error.stackTraceLimit cannot be written", async () => {
    await underLimit(
      () => Object.defineProperty(Error, "stackTraceLimit", { value: 10, writable: false, configurable: true }),
      (error) => {
        assert.strictEqual(Error.stackTraceLimit, 10)
        assert.include(error.stack ?? "", "\n    at ")
      }
    )
  })

  it("lower a limit defined by a setter, and put it back", async () => {
    const written: Array<unknown> = []
    let limit: unknown = 10
    await underLimit(
      () =>
        Object.defineProperty(Error, "stackTraceLimit", {
          get: () => limit,
          set: (value: unknown) => {
            written.push(value)
            limit = value
          },
          configurable: true
        }),
      () => assert.deepStrictEqual(written, [0, 10])
    )
  })

  it("leave a limit with a getter and no setter alone", async () => {
    await underLimit(
      () => Object.defineProperty(Error, "stackTraceLimit", { get: () => 10, configurable: true }),
      // Writing it would throw (modules are strict): the limit is read, never written.
      () => assert.strictEqual(Error.stackTraceLimit, 10)
    )
  })

  it("build the error where Error has no stackTraceLimit at all", async () => {
    await underLimit(
      () => Reflect.deleteProperty(Error, "stackTraceLimit"),
      // Error is extensible, so the limit is added for the moment and put back as it was read.
      () => assert.isUndefined(Error.stackTraceLimit)
    )
  })
})
