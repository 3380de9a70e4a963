import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection } from "../src/index.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe("MemoryConnection.make", () => {
  it.effect("read returns chunks of at most bufferSize, then fails once the client ended", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ bufferSize: 4, remoteAddress: "10.0.0.1:5" })
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
      const { client, connection } = yield* MemoryConnection.make()
      const pending = yield* Effect.forkChild(connection.read)
      yield* TestClock.adjust(0)
      yield* Fiber.interrupt(pending)
      yield* client.send("kept")
      assert.strictEqual(text(yield* connection.read), "kept")
    })
  )

  it.effect("write reaches the client; close is idempotent and seen by the client", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* connection.write("he")
      yield* connection.write(new TextEncoder().encode("llo"))
      assert.strictEqual(yield* nextReply(client), "hello")
      yield* connection.close
      yield* connection.close
      yield* serverClosed(client)
      assert.strictEqual((yield* Effect.flip(connection.write("late"))).reason, "LocalClosed")
      assert.strictEqual((yield* Effect.flip(client.receive)).reason, "Closed")
    })
  )

  it.effect("awaitReadable times out on the Clock and consumes nothing", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
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

  it.effect("transport.ended turns true once the client ended or reset, with failure saying why", () =>
    Effect.gen(function* () {
      const ended = yield* MemoryConnection.make()
      assert.isFalse(ended.connection.transport.ended)
      assert.strictEqual(ended.connection.transport.failure, undefined)
      yield* ended.client.send("last")
      yield* ended.client.end
      assert.isTrue(ended.connection.transport.ended)
      assert.strictEqual(ended.connection.transport.failure?.reason, "Closed")
      // Bytes that arrived before the end are still there.
      assert.strictEqual(text(ended.connection.transport.poll(10)!), "last")

      const reset = yield* MemoryConnection.make()
      yield* reset.client.reset
      assert.isTrue(reset.connection.transport.ended)
    })
  )

  it.effect("write of the same small payload reuses one effect, which writes each time it runs", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const ok = new TextEncoder().encode("OK")
      const first = connection.write(ok)
      assert.strictEqual(connection.write(ok), first)
      assert.strictEqual(connection.write("OK"), connection.write("OK"))
      yield* first
      yield* first
      yield* connection.write("!")
      assert.strictEqual(yield* nextReply(client), "OKOK!")
      // A large payload is not kept by the connection: each call builds its own effect.
      const big = new Uint8Array(4096)
      assert.notStrictEqual(connection.write(big), connection.write(big))
    })
  )

  it.effect(
    "with writeBufferBytes, write reports a full transport and awaitWritable waits for the client or times out",
    () =>
      Effect.gen(function* () {
        const { client, connection } = yield* MemoryConnection.make({ writeBufferBytes: 4 })
        const transport = connection.transport
        assert.isTrue(transport.write("ab"))
        assert.isFalse(transport.write("cd")) // queued, but now full
        const events: Array<string> = []
        transport.awaitWritable(1000, (error) => events.push(error?.reason ?? "writable"))
        assert.strictEqual(yield* nextReply(client), "abcd")
        assert.deepStrictEqual(events, ["writable"])
        assert.isFalse(transport.write("efgh"))
        transport.awaitWritable(1000, (error) => events.push(error?.reason ?? "writable"))
        yield* TestClock.adjust(999)
        assert.deepStrictEqual(events, ["writable"])
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(events, ["writable", "Timeout"])
      })
  )
})
