import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { MemoryConnection, PoolError } from "../src/index.ts"
import { settle } from "./utils/manager.ts"
import { nextReply, outcome, soon } from "./utils/soon.ts"

// What a test does as the peer (`MemoryClient`), as the server side sees it.

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes))

describe("MemoryClient.send", () => {
  it.effect("is ignored once the client ended: the server reads what came before, then the end", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.send("last")
      yield* client.end
      yield* client.send("late")
      assert.strictEqual(text(connection.transport.poll(100)), "last")
      assert.isUndefined(connection.transport.poll(100), "a send after end reached the server")
      assert.strictEqual((yield* Effect.flip(connection.read)).reason, "Closed")
    })
  )

  it.effect("is ignored once the server side closed", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* connection.close
      yield* client.send("late")
      assert.isUndefined(connection.transport.poll(100), "a send after close reached the server")
    })
  )

  it.effect("of nothing sends no chunk: the next read gets the next bytes", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.send("")
      yield* client.send(new Uint8Array(0))
      yield* client.send("x")
      assert.strictEqual(text(yield* connection.read), "x")
    })
  )
})

describe("MemoryClient.end and reset", () => {
  it.effect("end is an orderly close: reads end with Closed without a cause, after the buffered bytes", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ remoteAddress: "peer:1" })
      yield* client.send("kept")
      yield* client.end
      yield* client.end
      assert.strictEqual(text(yield* connection.read), "kept")
      const error = yield* Effect.flip(connection.read)
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(error.remoteAddress, "peer:1")
      assert.isUndefined(error.cause)
      // The server side may still answer a peer that only stopped sending.
      yield* connection.write("bye")
      assert.strictEqual(yield* nextReply(client), "bye")
    })
  )

  it.effect("reset drops buffered bytes: reads and writes fail at once, saying the peer reset", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ remoteAddress: "peer:1" })
      yield* client.send("lost")
      yield* client.reset
      assert.isTrue(connection.transport.ended)
      const readError = yield* Effect.flip(connection.read)
      assert.strictEqual(readError.reason, "Closed")
      assert.strictEqual(readError.cause, "reset by the peer")
      assert.isTrue(PoolError.isConnectionError(connection.transport.write("answer")), "a write after reset was taken")
      const error = yield* Effect.flip(connection.write("answer"))
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(error.cause, "reset by the peer")
      assert.strictEqual(error.remoteAddress, "peer:1")
      assert.strictEqual(connection.transport.bytesWritten, 0)
      // A reset peer sends nothing more.
      yield* client.send("after")
      assert.isUndefined(connection.transport.poll(100), "a send after reset reached the server")
    })
  )

  it.effect("reset fails a write that waits for a full transport", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      yield* connection.write("ab") // taken, with room left
      const blocked = yield* Effect.forkChild(connection.write("cd"), { startImmediately: true })
      yield* settle
      assert.isUndefined(blocked.pollUnsafe(), "the write did not wait for the full transport")
      yield* client.reset
      const exit = yield* outcome(blocked, "the write")
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(
        (yield* Effect.flip(soon(Fiber.join(blocked), "the blocked call to complete"))).cause,
        "reset by the peer"
      )
    })
  )

  it.effect("reset after the server side closed changes nothing: its buffered bytes stay readable", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.send("kept")
      yield* connection.close
      yield* client.reset
      assert.strictEqual(connection.transport.failure?.reason, "LocalClosed")
      assert.strictEqual(text(connection.transport.poll(100)), "kept")
    })
  )
})

describe("the server side's close, as the client sees it", () => {
  it.effect("ends the transport with LocalClosed: reads and writes fail with it", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* connection.close
      assert.isTrue(yield* client.isClosed)
      assert.isTrue(connection.transport.ended)
      assert.strictEqual(connection.transport.failure?.reason, "LocalClosed")
      assert.strictEqual((yield* Effect.flip(connection.read)).reason, "LocalClosed")
      assert.strictEqual((yield* Effect.flip(connection.write("x"))).reason, "LocalClosed")
    })
  )

  it.effect("after the client ended, keeps saying the peer closed first", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.end
      yield* connection.close
      assert.strictEqual(connection.transport.failure?.reason, "Closed")
    })
  )

  it.effect("fails a pending receive with Closed, naming the server side", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const receiving = yield* Effect.forkChild(client.receive, { startImmediately: true })
      yield* settle
      assert.isUndefined(receiving.pollUnsafe(), "receive did not wait for bytes")
      yield* connection.close
      const exit = yield* outcome(receiving, "the receive")
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(soon(Fiber.join(receiving), "the read to complete"))
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(error.remoteAddress, "memory-server")
    })
  )
})

describe("MemoryClient.receive", () => {
  it.effect("an interrupted receive leaves the server's next bytes for the next receive", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const abandoned = yield* Effect.forkChild(client.receive, { startImmediately: true })
      yield* Fiber.interrupt(abandoned)
      yield* connection.write("kept")
      const next = yield* Effect.forkChild(client.receiveText, { startImmediately: true })
      const exit = yield* outcome(next, "the next receive")
      assert.deepStrictEqual(exit, Exit.succeed("kept"))
    })
  )

  it.effect("interrupting one of two pending receives leaves the other waiting for bytes", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const first = yield* Effect.forkChild(client.receiveText, { startImmediately: true })
      const second = yield* Effect.forkChild(client.receiveText, { startImmediately: true })
      yield* Fiber.interrupt(first)
      yield* connection.write("kept")
      const exit = yield* outcome(second, "the other receive")
      assert.deepStrictEqual(exit, Exit.succeed("kept"))
    })
  )
})
