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

  it("build the error with its stack where Error.stackTraceLimit cannot be written", async () => {
    const descriptor = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")!
    Object.defineProperty(Error, "stackTraceLimit", { value: 10, writable: false, configurable: true })
    try {
      // A fresh copy of the module, which checks writability when it loads.
      vi.resetModules()
      const Fresh = await import("../src/Connection.ts")
      const error = Fresh.failure("Closed", "10.0.0.7:40000")
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(Error.stackTraceLimit, 10)
      assert.include(error.stack ?? "", "\n    at ")
    } finally {
      Object.defineProperty(Error, "stackTraceLimit", descriptor)
      vi.resetModules()
    }
  })
})
