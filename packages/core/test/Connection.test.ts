import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Connection, MemoryConnection } from "../src/index.ts"

describe("Connection.make", () => {
  it.effect("a write waits for a full transport at most transport.writeTimeoutMillis, then fails with Timeout", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      // Any Connection over the transport follows the timeout the transport carries.
      const transport = memory.connection.transport
      const connection = Connection.make(transport)
      transport.writeTimeoutMillis = 1000
      yield* connection.write("ab") // taken, with room left
      const blocked = yield* Effect.forkChild(Effect.flip(connection.write("cd")), { startImmediately: true })
      yield* TestClock.adjust(999)
      assert.isUndefined(blocked.pollUnsafe())
      yield* TestClock.adjust(1)
      const error = yield* Fiber.join(blocked)
      assert.strictEqual(error.reason, "Timeout")
    })
  )

  it.effect("with the default Infinity a write waits until the peer reads", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      const connection = Connection.make(memory.connection.transport)
      assert.strictEqual(memory.connection.transport.writeTimeoutMillis, Number.POSITIVE_INFINITY)
      yield* connection.write("ab")
      const blocked = yield* Effect.forkChild(connection.write("cd"), { startImmediately: true })
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(blocked.pollUnsafe())
      assert.strictEqual(yield* memory.client.receiveText, "abcd")
      yield* Fiber.join(blocked)
    })
  )
})
