import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Connection } from "../src/index.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe("Connection.makeMemory", () => {
  it.effect("read returns chunks of at most bufferSize, then fails once the client ended", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* Connection.makeMemory({ bufferSize: 4, remoteAddress: "10.0.0.1:5" })
      yield* client.send("abcdefghij")
      yield* client.end
      assert.strictEqual(text(yield* connection.read), "abcd")
      assert.strictEqual(text(yield* connection.read), "efgh")
      assert.strictEqual(text(yield* connection.read), "ij")
      const error = yield* Effect.flip(connection.read)
      assert.strictEqual(error.reason, "Closed")
      assert.include(error.message, "10.0.0.1:5")
    })
  )

  it.effect("a pending read waits for bytes and is interruptible without losing them", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* Connection.makeMemory()
      const pending = yield* Effect.forkChild(connection.read)
      yield* TestClock.adjust(0)
      yield* Fiber.interrupt(pending)
      yield* client.send("kept")
      assert.strictEqual(text(yield* connection.read), "kept")
    })
  )

  it.effect("write reaches the client; close is idempotent and seen by the client", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* Connection.makeMemory()
      yield* connection.write("he")
      yield* connection.write(new TextEncoder().encode("llo"))
      assert.strictEqual(yield* client.receiveText, "hello")
      yield* connection.close
      yield* connection.close
      yield* client.closed
      assert.strictEqual((yield* Effect.flip(connection.write("late"))).reason, "LocalClosed")
      assert.strictEqual((yield* Effect.flip(client.receive)).reason, "Closed")
    })
  )

  it.effect("awaitReadable times out on the Clock and consumes nothing", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* Connection.makeMemory()
      const events: Array<string> = []
      connection.transport.awaitReadable(1000, (event) => events.push(event))
      yield* TestClock.adjust(999)
      assert.deepStrictEqual(events, [])
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(events, ["timeout"])
      const cancel = connection.transport.awaitReadable(1000, (event) => events.push(event))
      cancel()
      yield* client.send("x")
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual(events, ["timeout"])
      assert.strictEqual(text(connection.transport.poll(10)!), "x")
    })
  )
})
