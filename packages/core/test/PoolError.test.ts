/**
 * The errors users see and act on: their tags (for `catchTag`), their fields,
 * and messages that say what happened.
 */
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import { Connection, MemoryConnection, PoolError, PoolManager } from "../src/index.ts"
import { connect, echo, started } from "./utils/manager.ts"

const address = "10.0.0.7:40000"

describe("ConfigError", () => {
  it("its message lists each issue as `field = value: message`, separated by '; '", () => {
    const error = new PoolError.ConfigError({
      issues: [
        { field: "bufferSize", value: "-2", message: "expected a number >= 0" },
        { field: "debug", value: '"yes"', message: "Expected boolean" }
      ]
    })
    assert.strictEqual(
      error.message,
      'Invalid pool manager config: bufferSize = -2: expected a number >= 0; debug = "yes": Expected boolean'
    )
  })

  it("each issue must have a field, a value and a message", () => {
    const malformed = { issues: [{ field: "bufferSize" }] } as unknown as ConstructorParameters<
      typeof PoolError.ConfigError
    >[0]
    assert.throws(() => new PoolError.ConfigError(malformed))
  })
})

describe("PoolManager errors", () => {
  it.effect("AlreadyRunningError can be caught by its tag", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      const outcome = yield* manager.start.pipe(
        Effect.as("started again"),
        Effect.catchTag("AlreadyRunningError", (error) => Effect.succeed(error.message))
      )
      assert.strictEqual(outcome, "pool manager is already running: call stop before starting it again")
    })
  )

  it.effect("NotRunningError says to start the manager first", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({}, echo([]))
      const { connection } = yield* MemoryConnection.make()
      const error = yield* Effect.flip(manager.put(connection))
      assert.strictEqual(error._tag, "NotRunningError")
      assert.strictEqual(error.message, "pool manager is not running: call start before putting connections")
    })
  )

  it.effect("PoolBusyError carries the maxWorkersCount that was reached", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1 })
      yield* connect(manager)
      const { connection } = yield* MemoryConnection.make()
      const error = yield* Effect.flip(manager.put(connection))
      assert.instanceOf(error, PoolError.PoolBusyError)
      if (error._tag === "PoolBusyError") assert.strictEqual(error.maxWorkersCount, 1)
    })
  )

  it("a program missing the PoolManager service fails naming it", () => {
    assert.throws(() => Context.getUnsafe(Context.empty(), PoolManager.PoolManager), /PoolManager/)
  })
})

describe("ConnectionError", () => {
  it("each reason has its own message naming the connection", () => {
    assert.strictEqual(Connection.failure("Closed", address).message, `connection ${address} was closed by the peer`)
    assert.strictEqual(Connection.failure("LocalClosed", address).message, `connection ${address} is already closed`)
    assert.strictEqual(
      Connection.failure("Timeout", address).message,
      `connection ${address} read nothing of what was written to it in time`
    )
    assert.strictEqual(
      Connection.failure("Timeout", address, "no reply in 3s").message,
      `connection ${address} timed out: no reply in 3s`
    )
    assert.strictEqual(
      Connection.failure("Error", address, new Error("ECONNRESET")).message,
      `connection ${address} failed: Error: ECONNRESET`
    )
  })

  it("the reason and the cause are kept as given", () => {
    const cause = new Error("ECONNRESET")
    const failed = Connection.failure("Error", address, cause)
    assert.strictEqual(failed.reason, "Error")
    assert.strictEqual(failed.remoteAddress, address)
    assert.strictEqual(failed.cause, cause)
    assert.isTrue(PoolError.isConnectionError(failed))
  })

  it("a failure without a cause is shown without one", () => {
    const closed = Connection.failure("Closed", address)
    assert.isFalse("cause" in closed)
    assert.notInclude(inspect(closed), "cause")
  })

  it.effect("a write on a connection closed locally fails with LocalClosed", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make()
      yield* connection.close
      const error = yield* Effect.flip(connection.write("late"))
      assert.strictEqual(error.reason, "LocalClosed")
      assert.match(error.message, /^connection .+ is already closed$/)
    })
  )

  it("a failure is built without a stack trace, and other errors keep theirs", () => {
    const limit = Error.stackTraceLimit
    const closed = Connection.failure("Closed", address)
    assert.notInclude(closed.stack ?? "", "\n    at ")
    assert.strictEqual(Error.stackTraceLimit, limit)
    assert.include(new Error("later").stack ?? "", "\n    at ")
  })
})
