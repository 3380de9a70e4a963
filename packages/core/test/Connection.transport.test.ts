import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Connection, MemoryConnection } from "../src/index.ts"
import { setDeadline, type TransportConnection } from "../src/internal/transportConnection.ts"
import { settle } from "./utils/manager.ts"
import { nextReply, outcome, soon } from "./utils/soon.ts"

// `Connection.make` over a `Transport`: what a runtime binding (the node
// package's socket transport) gets for free, checked over the memory transport
// and over hand-made transports for the cases a memory connection never shows.

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** A transport with no bytes, always writable, that ends nothing: override what a test needs. */
const transportWith = (overrides: Partial<Connection.Transport>): Connection.Transport => ({
  remoteAddress: "fake:1",
  remoteHost: "fake",
  ended: false,
  failure: undefined,
  bytesWritten: 0,
  poll: () => undefined,
  awaitReadable: () => () => {},
  write: () => true,
  awaitWritable: (_timeoutMillis, onReady) => {
    onReady()
    return () => {}
  },
  close: () => {},
  abort: () => {},
  ...overrides
})

describe("Connection.make: read", () => {
  it.effect("read and close are values built once per connection", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make()
      assert.strictEqual(connection.read, connection.read)
      assert.strictEqual(connection.close, connection.close)
    })
  )

  it.effect("a read takes one chunk and leaves the next one for the next read", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* client.send("ab")
      yield* client.send("cd")
      assert.strictEqual(text(yield* connection.read), "ab")
      const next = yield* Effect.forkChild(connection.read, { startImmediately: true })
      const exit = yield* outcome(next, "the second read")
      assert.isTrue(Exit.isSuccess(exit) && text(exit.value) === "cd", "the second chunk was lost")
    })
  )

  it.effect("an interrupted read leaves no wait behind to take the bytes that arrive later", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      const abandoned = yield* Effect.forkChild(connection.read, { startImmediately: true })
      yield* settle
      yield* Fiber.interrupt(abandoned)
      yield* client.send("kept")
      // The send is announced on a later tick: let it be, before reading.
      yield* settle
      assert.strictEqual(text(connection.transport.poll(100) ?? new Uint8Array(0)), "kept")
    })
  )

  it.effect("a read that times out says that no bytes arrived within the deadline", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make({ remoteAddress: "peer:1" })
      setDeadline(connection, 1000)
      const reading = yield* Effect.forkChild(Effect.flip(connection.read), { startImmediately: true })
      yield* TestClock.adjust(999)
      assert.isUndefined(reading.pollUnsafe())
      yield* TestClock.adjust(1)
      const error = yield* soon(Fiber.join(reading), "the read to complete")
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(error.remoteAddress, "peer:1")
      // Not the message of a write timeout, which says the peer read nothing.
      assert.include(error.message, "no bytes arrived within the deadline")
    })
  )

  it.effect("a read fails with the transport's failure once it ended", () =>
    Effect.gen(function* () {
      const { connection } = yield* MemoryConnection.make()
      yield* connection.close
      assert.strictEqual((yield* Effect.flip(connection.read)).reason, "LocalClosed")
    })
  )

  it.effect("a read of a transport that ended without saying why fails with Closed, naming the peer", () =>
    Effect.gen(function* () {
      const connection = Connection.make(transportWith({ ended: true }))
      const error = yield* Effect.flip(connection.read)
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(error.remoteAddress, "fake:1")
    })
  )
})

describe("Connection.make: write", () => {
  it.effect("a write the transport refuses fails with its error at once, without waiting to drain", () =>
    Effect.gen(function* () {
      let waits = 0
      const refusal = Connection.failure("Error", "fake:1", "broken pipe")
      const connection = Connection.make(
        transportWith({
          write: () => refusal,
          awaitWritable: (_timeoutMillis, onReady) => {
            waits++
            onReady()
            return () => {}
          }
        })
      )
      const error = yield* Effect.flip(connection.write("x"))
      assert.strictEqual(error, refusal)
      assert.strictEqual(waits, 0)
    })
  )
})

describe("Connection.make: runNow (the pool's run of an effect that completes at once)", () => {
  it.effect("runs the latest small write here; returns any other effect as it is, not run", () =>
    Effect.gen(function* () {
      const written: Array<string> = []
      const connection = Connection.make(
        transportWith({ write: (data) => written.push(String(data)) > 0 })
      ) as TransportConnection
      const first = connection.write("a")
      const latest = connection.write("b")
      assert.isUndefined(connection.runNow(latest))
      assert.deepStrictEqual(written, ["b"])
      // An older write, a write too large to be kept, or another effect: for the fiber.
      assert.strictEqual(connection.runNow(first), first)
      const large = connection.write("x".repeat(300))
      assert.strictEqual(connection.runNow(large), large)
      assert.strictEqual(connection.runNow(Effect.void), Effect.void)
      assert.deepStrictEqual(written, ["b"], "nothing else was written")
      yield* first
      assert.deepStrictEqual(written, ["b", "a"], "and the fiber still runs what came back")
    })
  )

  it.effect(
    "a write the transport takes but is full after returns the wait for the peer to read; a refusal, its failure",
    () =>
      Effect.gen(function* () {
        const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
        const connection = Connection.make(memory.connection.transport) as TransportConnection
        const rest = connection.runNow(connection.write("abcd"))
        assert.isDefined(rest)
        const waiting = yield* Effect.forkChild(rest!, { startImmediately: true })
        yield* settle
        assert.isUndefined(waiting.pollUnsafe(), "waits until the peer reads")
        assert.strictEqual(yield* nextReply(memory.client), "abcd", "written at once, not by the wait")
        yield* soon(Fiber.join(waiting), "the wait to end once the peer read")

        const refusal = Connection.failure("Error", "fake:1", "broken pipe")
        const refused = Connection.make(transportWith({ write: () => refusal })) as TransportConnection
        const failed = refused.runNow(refused.write("x"))
        assert.isDefined(failed)
        assert.deepStrictEqual(yield* Effect.exit(failed!), Exit.fail(refusal))
      })
  )
})
