import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Connection, Framing, MemoryConnection, type PoolError, PoolManager } from "../src/index.ts"
import { nextReply, repliesOf, serverClosed, soon } from "./utils/soon.ts"

/**
 * Two writes into a transport that holds 3 bytes, of a client that reads
 * nothing: the second one waits for room, and its failure goes to `failed`.
 */
const writesPastFull = (conn: Connection.Connection, failed: Deferred.Deferred<PoolError.ConnectionError>) =>
  conn.write("ab").pipe(
    Effect.andThen(conn.write("cd")),
    Effect.catch((error) => Deferred.succeed(failed, error))
  )

/** Asserts that the waiting write fails with Timeout exactly one second of the test clock from now. */
const timesOutInOneSecond = (failed: Deferred.Deferred<PoolError.ConnectionError>) =>
  Effect.gen(function* () {
    yield* TestClock.adjust(999)
    assert.isFalse(yield* Deferred.isDone(failed), "the write gave up before the deadline")
    yield* TestClock.adjust(1)
    const error = yield* soon(Deferred.await(failed), "the write to fail at the deadline")
    assert.strictEqual(error.reason, "Timeout")
  })

describe("Connection.make", () => {
  it.effect("a callback's write waits for a full transport at most clientsDeadline, then fails with Timeout", () =>
    Effect.gen(function* () {
      const failed = yield* Deferred.make<PoolError.ConnectionError>()
      const manager = yield* PoolManager.make({ clientsDeadline: "1 second" }, (conn) => writesPastFull(conn, failed))
      yield* manager.start
      const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      // Should an assertion fail, the reset ends the blocked write, so that
      // stopping the manager does not wait for it.
      yield* Effect.addFinalizer(() => memory.client.reset)
      yield* manager.put(memory.connection)
      yield* memory.client.send("go")
      yield* timesOutInOneSecond(failed)
    })
  )

  it.effect("a clientsDeadline changed by setConfig bounds the writes of a connection already open", () =>
    Effect.gen(function* () {
      const failed = yield* Deferred.make<PoolError.ConnectionError>()
      const manager = yield* PoolManager.make({ clientsDeadline: "1 hour" }, (conn, body) =>
        new TextDecoder().decode(body) === "first" ? Effect.orDie(conn.write("ok")) : writesPastFull(conn, failed)
      )
      yield* manager.start
      const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      yield* Effect.addFinalizer(() => memory.client.reset)
      yield* manager.put(memory.connection)
      yield* memory.client.send("first")
      assert.strictEqual(yield* nextReply(memory.client), "ok")
      yield* manager.setConfig({ clientsDeadline: "1 second" })
      yield* memory.client.send("go")
      yield* timesOutInOneSecond(failed)
    })
  )

  it.effect("outside a pool a write has no deadline: it waits until the peer reads", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryConnection.make({ writeBufferBytes: 3 })
      const connection = Connection.make(memory.connection.transport)
      yield* connection.write("ab")
      const blocked = yield* Effect.forkChild(connection.write("cd"), { startImmediately: true })
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(blocked.pollUnsafe())
      assert.strictEqual(yield* nextReply(memory.client), "abcd")
      yield* soon(Fiber.join(blocked), "the blocked call to complete")
    })
  )

  // The @example of `Connection`: the same callback, framed by lines.
  it.effect("the line protocol of the example answers PING\\nPING\\n in one write with two PONGs", () =>
    Effect.gen(function* () {
      const reply = (conn: Connection.Connection, command: string) =>
        command === "QUIT"
          ? Effect.log(`${conn.remoteAddress} said goodbye`).pipe(
              Effect.andThen(conn.write("BYE\n")),
              Effect.andThen(conn.close)
            )
          : conn.write(command === "PING" ? "PONG\n" : "ERROR unknown command\n")
      const callback: PoolManager.Callback<PoolError.ConnectionError> = (conn, line) =>
        reply(conn, new TextDecoder().decode(line))
      const manager = yield* PoolManager.make({ framing: Framing.lines({ maxLength: 1024 }) }, callback)
      yield* manager.start
      const { client, connection } = yield* MemoryConnection.make()
      yield* manager.put(connection)
      yield* client.send("PING\nPING\n")
      assert.strictEqual(yield* nextReply(client), "PONG\nPONG\n")
      // A line split across two writes, a \r\n ending, and an unknown command.
      yield* client.send("PI")
      yield* client.send("NG\r\nHELLO\n")
      assert.strictEqual(
        yield* repliesOf(client, "PONG\nERROR unknown command\n".length),
        "PONG\nERROR unknown command\n"
      )
      yield* client.send("QUIT\n")
      assert.strictEqual(yield* nextReply(client), "BYE\n")
      yield* serverClosed(client)
    })
  )

  it.effect("the pool serves a Connection of the user's own and leaves it as it was given", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({ clientsDeadline: "1 second" }, (conn, body) =>
        Effect.orDie(conn.write(`OK:${new TextDecoder().decode(body)}`))
      )
      yield* manager.start
      const { client, connection } = yield* MemoryConnection.make()
      // A wrapper of the user's (here one that renames the peer), frozen: the
      // pool keeps the deadline of connections `Connection.make` built, and
      // sets nothing on others.
      const own: Connection.Connection = Object.freeze({
        remoteAddress: "wrapped",
        read: connection.read,
        write: connection.write,
        close: connection.close,
        writeNow: connection.writeNow,
        closeNow: connection.closeNow,
        transport: connection.transport
      })
      yield* soon(manager.put(own), "put to take the connection")
      yield* client.send("ping")
      assert.strictEqual(yield* nextReply(client), "OK:ping")
      yield* client.end
      yield* serverClosed(client)
      assert.strictEqual((yield* manager.stats).callbackFailures, 0)
    })
  )
})
