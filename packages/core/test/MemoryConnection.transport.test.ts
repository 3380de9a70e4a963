import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection } from "../src/index.ts"
import { settle } from "./utils/manager.ts"
import { nextReply, soon } from "./utils/soon.ts"

// The server side of a MemoryConnection is a real `Connection.Transport`: these
// tests hold it to that contract, as a runtime binding would be held.

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes))

/** Records what the `onReady` of `awaitWritable` was called with. */
const writableEvents = () => {
  const events: Array<string> = []
  const onReady = (error?: { readonly reason: string; readonly cause?: unknown }) =>
    events.push(
      error === undefined ? "writable" : `${error.reason}${error.cause === undefined ? "" : `: ${error.cause}`}`
    )
  return { events, onReady }
}

describe("MemoryConnection transport: addresses", () => {
  it.effect("remoteAddress defaults to memory and remoteHost follows remoteAddress unless given", () =>
    Effect.gen(function* () {
      const plain = yield* MemoryConnection.make()
      assert.strictEqual(plain.connection.remoteAddress, "memory")
      assert.strictEqual(plain.connection.transport.remoteHost, "memory")
      const addressed = yield* MemoryConnection.make({ remoteAddress: "10.0.0.1:5" })
      assert.strictEqual(addressed.connection.transport.remoteHost, "10.0.0.1:5")
      const hosted = yield* MemoryConnection.make({ remoteAddress: "10.0.0.1:5", remoteHost: "10.0.0.1" })
      assert.strictEqual(hosted.connection.transport.remoteHost, "10.0.0.1")
    })
  )
})

describe("MemoryConnection transport: poll and awaitReadable", () => {
  it.effect("poll takes a chunk of exactly maxBytes whole, leaving nothing behind", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.send("abcd")
      assert.strictEqual(text(connection.transport.poll(4)), "abcd")
      assert.isUndefined(connection.transport.poll(4), "an empty leftover was returned")
    })
  )

  it.effect("awaitReadable calls back before returning when bytes are buffered or the client ended", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const events: Array<string> = []
      yield* client.send("x")
      connection.transport.awaitReadable(1000, (event) => events.push(event))
      assert.deepStrictEqual(events, ["readable"])
      connection.transport.poll(10)
      yield* client.end
      connection.transport.awaitReadable(1000, (event) => events.push(event))
      assert.deepStrictEqual(events, ["readable", "done"])
    })
  )

  it.effect("a pending awaitReadable hears readable on a later tick after send, and done after end", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const events: Array<string> = []
      connection.transport.awaitReadable(1000, (event) => events.push(event))
      yield* client.send("x")
      // Like a socket, the bytes are announced on a later tick, not inside `send`.
      assert.deepStrictEqual(events, [])
      yield* settle
      assert.deepStrictEqual(events, ["readable"])
      connection.transport.poll(10)
      connection.transport.awaitReadable(1000, (event) => events.push(event))
      yield* client.end
      yield* settle
      assert.deepStrictEqual(events, ["readable", "done"])
      // Each wait is called back once: its deadline no longer fires.
      yield* TestClock.adjust(5000)
      assert.deepStrictEqual(events, ["readable", "done"])
    })
  )

  it.effect("a pending awaitReadable hears done when the server side closes or the client resets", () =>
    Effect.gen(function* () {
      const closing = yield* MemoryConnection.make()
      const events: Array<string> = []
      closing.connection.transport.awaitReadable(1000, (event) => events.push(`close ${event}`))
      yield* closing.connection.close
      assert.deepStrictEqual(events, ["close done"])

      const resetting = yield* MemoryConnection.make()
      resetting.connection.transport.awaitReadable(1000, (event) => events.push(`reset ${event}`))
      yield* resetting.client.reset
      yield* settle
      assert.deepStrictEqual(events, ["close done", "reset done"])
    })
  )

  it.effect("a newer awaitReadable replaces an older one: the older's deadline and cancel leave it alone", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const events: Array<string> = []
      const cancelOlder = connection.transport.awaitReadable(1000, () => {})
      connection.transport.awaitReadable(5000, (event) => events.push(event))
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(events, [], "the older wait's deadline ended the newer one")
      cancelOlder()
      yield* client.send("x")
      yield* settle
      assert.deepStrictEqual(events, ["readable"], "cancelling the older wait cancelled the newer one")
    })
  )

  it.effect("a wait with an Infinity timeout never times out, however far the clock moves", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make({ writeBufferBytes: 1 })
      const events: Array<string> = []
      connection.transport.awaitReadable(Number.POSITIVE_INFINITY, (event) => events.push(event))
      assert.isFalse(connection.transport.write("x"))
      const writable = writableEvents()
      connection.transport.awaitWritable(Number.POSITIVE_INFINITY, writable.onReady)
      yield* TestClock.adjust(Duration.infinity)
      yield* settle
      assert.deepStrictEqual(events, [])
      assert.deepStrictEqual(writable.events, [])
    })
  )
})

describe("MemoryConnection transport: write and awaitWritable", () => {
  it.effect("an empty write is taken even when the transport is full, and counts no byte", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make({ writeBufferBytes: 2 })
      assert.isFalse(connection.transport.write("ab"))
      assert.isTrue(connection.transport.write(""))
      assert.isTrue(connection.transport.write(new Uint8Array(0)))
      assert.strictEqual(connection.transport.bytesWritten, 2)
    })
  )

  it.effect("awaitWritable calls back at once while there is room", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make({ writeBufferBytes: 4 })
      assert.isTrue(connection.transport.write("ab"))
      const writable = writableEvents()
      connection.transport.awaitWritable(1000, writable.onReady)
      assert.deepStrictEqual(writable.events, ["writable"])
    })
  )

  it.effect("awaitWritable calls back at once with LocalClosed after a close, and a pending one hears it", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make({ writeBufferBytes: 2 })
      assert.isFalse(connection.transport.write("ab"))
      const pending = writableEvents()
      connection.transport.awaitWritable(1000, pending.onReady)
      yield* connection.close
      assert.deepStrictEqual(pending.events, ["LocalClosed"])
      const after = writableEvents()
      connection.transport.awaitWritable(1000, after.onReady)
      assert.deepStrictEqual(after.events, ["LocalClosed"])
    })
  )

  it.effect("after a client reset, awaitWritable reports the reset, even on a full transport", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ writeBufferBytes: 2 })
      assert.isFalse(connection.transport.write("ab"))
      const pending = writableEvents()
      connection.transport.awaitWritable(1000, pending.onReady)
      yield* client.reset
      yield* settle
      assert.deepStrictEqual(pending.events, ["Closed: reset by the peer"])
      const after = writableEvents()
      connection.transport.awaitWritable(1000, after.onReady)
      assert.deepStrictEqual(after.events, ["Closed: reset by the peer"])
    })
  )

  it.effect("a cancelled awaitWritable is called back neither when the client reads nor at its deadline", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ writeBufferBytes: 2 })
      assert.isFalse(connection.transport.write("ab"))
      const cancelled = writableEvents()
      const cancel = connection.transport.awaitWritable(1000, cancelled.onReady)
      cancel()
      assert.strictEqual(yield* nextReply(client), "ab")
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual(cancelled.events, [])
    })
  )

  it.effect("a newer awaitWritable replaces an older one: the older's deadline and cancel leave it alone", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make({ writeBufferBytes: 2 })
      assert.isFalse(connection.transport.write("ab"))
      const cancelOlder = connection.transport.awaitWritable(1000, () => {})
      const newer = writableEvents()
      connection.transport.awaitWritable(5000, newer.onReady)
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(newer.events, [], "the older wait's deadline ended the newer one")
      cancelOlder()
      assert.strictEqual(yield* nextReply(client), "ab")
      assert.deepStrictEqual(newer.events, ["writable"], "cancelling the older wait cancelled the newer one")
    })
  )
})

describe("MemoryConnection transport: cork", () => {
  it.effect("a second cork before the first is released changes nothing, not even a later cork's hold", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const transport = connection.transport
      const receiving = yield* Effect.forkChild(client.receiveText, { startImmediately: true })
      yield* Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            transport.cork!()
            // Runs once the first cork is released: corks again, then writes in a
            // later microtask, which must still be held by this new cork.
            queueMicrotask(() => {
              queueMicrotask(() => {
                transport.write("c")
                transport.write("d")
                queueMicrotask(resolve)
              })
              transport.cork!()
            })
            transport.cork!()
          })
      )
      yield* settle
      const exit = receiving.pollUnsafe()
      assert.isDefined(exit, "the client received nothing")
      assert.strictEqual(yield* soon(Fiber.join(receiving), "the read to complete"), "cd")
    })
  )
})
