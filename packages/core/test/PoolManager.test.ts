import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolError, PoolManager } from "../src/index.ts"
import { connect, echo, type Seen, settle, started } from "./utils/manager.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"

const decoder = new TextDecoder()

describe("PoolManager lifecycle", () => {
  it.effect("start twice fails with AlreadyRunningError", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      const error = yield* Effect.flip(manager.start)
      assert.instanceOf(error, PoolError.AlreadyRunningError)
      assert.match(error.message, /already running/)
    })
  )

  it.effect("put before start and after stop fails with NotRunningError", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({}, echo([]))
      const { connection } = yield* MemoryConnection.make()
      assert.instanceOf(yield* Effect.flip(manager.put(connection)), PoolError.NotRunningError)
      yield* manager.start
      yield* manager.stop
      assert.instanceOf(yield* Effect.flip(manager.put(connection)), PoolError.NotRunningError)
      assert.isFalse((yield* manager.stats).running)
    })
  )

  it.effect("start prespawns minWorkersCount idle workers", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 5, maxWorkersCount: 10 })
      const stats = yield* manager.stats
      assert.strictEqual(stats.workers, 5)
      assert.strictEqual(stats.idle, 5)
      assert.strictEqual(stats.busy, 0)
      assert.isTrue(stats.running)
    })
  )

  it.effect("restart: stop ends every worker and start works again", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ minWorkersCount: 2 }, seen)
      const first = yield* connect(manager)
      yield* first.send("one")
      assert.strictEqual(yield* nextReply(first), "OK:one")
      yield* manager.stop
      assert.strictEqual((yield* manager.stats).workers, 0)
      yield* serverClosed(first)
      yield* manager.start
      assert.strictEqual((yield* manager.stats).workers, 2)
      const second = yield* connect(manager)
      yield* second.send("two")
      assert.strictEqual(yield* nextReply(second), "OK:two")
      assert.deepStrictEqual(seen, ["one", "two"])
    })
  )

  it.effect("closing the scope of make stops the manager", () =>
    Effect.gen(function* () {
      const client = yield* Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* started({ minWorkersCount: 1 })
          return yield* connect(manager)
        })
      )
      assert.isTrue(yield* client.isClosed)
    })
  )

  it.effect("the layer is started when built and stopped when released", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const program = Effect.gen(function* () {
        const manager = yield* PoolManager.PoolManager
        const client = yield* connect(manager)
        yield* client.send("from a program")
        const reply = yield* nextReply(client)
        return { reply, stats: yield* manager.stats, client }
      })
      const result = yield* program.pipe(
        Effect.provide(PoolManager.layer({ minWorkersCount: 1, maxWorkersCount: 3 }, echo(seen)))
      )
      assert.strictEqual(result.reply, "OK:from a program")
      assert.isTrue(result.stats.running)
      assert.isTrue(yield* result.client.isClosed)
      assert.deepStrictEqual(seen, ["from a program"])
    })
  )

  it.effect("the layer fails with ConfigError on an invalid config", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Layer.build(PoolManager.layer({ minWorkersCount: 3, maxWorkersCount: 2 }, echo([])))
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(Layer.build(PoolManager.layer({ bufferSize: -1 }, echo([]))))
      assert.instanceOf(error, PoolError.ConfigError)
      assert.include(error.message, "bufferSize = -1")
    })
  )

  it.effect("callbacks run with the services the manager was made with", () =>
    Effect.gen(function* () {
      class Prefix extends Context.Service<Prefix, string>()("test/Prefix") {}
      const callback: PoolManager.Callback<never, Prefix> = (conn, body) =>
        Prefix.use((prefix) => Effect.orDie(conn.write(`${prefix}${body.length}`)))
      const manager = yield* PoolManager.make({}, callback).pipe(Effect.provideService(Prefix, "len="))
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("12345")
      assert.strictEqual(yield* nextReply(client), "len=5")
    })
  )
})

describe("PoolManager.put", () => {
  it.effect("busy at max, and capacity returns when a client leaves", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 2 })
      const a = yield* connect(manager)
      yield* connect(manager)
      const { connection } = yield* MemoryConnection.make()
      const error = yield* Effect.flip(manager.put(connection))
      assert.instanceOf(error, PoolError.PoolBusyError)
      assert.strictEqual(error.message, "can't put, pool is busy")
      assert.strictEqual((yield* manager.stats).rejected, 1)
      yield* a.end
      yield* serverClosed(a)
      yield* settle
      yield* manager.put(connection)
      const stats = yield* manager.stats
      assert.strictEqual(stats.busy, 2)
      assert.strictEqual(stats.accepted, 3)
      assert.strictEqual(stats.workers, 2)
    })
  )

  it.effect("max 0 admits 1,000 concurrent connections", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ maxWorkersCount: 0 }, seen)
      const clients = yield* Effect.forEach(Array.from({ length: 1000 }), () => connect(manager))
      assert.strictEqual((yield* manager.stats).busy, 1000)
      yield* Effect.forEach(clients, (client, i) => client.send(`m${i}`))
      const replies = yield* Effect.forEach(clients, nextReply)
      assert.strictEqual(replies[999], "OK:m999")
      assert.strictEqual(seen.length, 1000)
    })
  )

  it.effect("reuses the most recently idle worker first", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 3 })
      const before = yield* manager.stats
      for (let i = 0; i < 5; i++) {
        const client = yield* connect(manager)
        yield* client.end
        yield* serverClosed(client)
        yield* settle
      }
      const after = yield* manager.stats
      assert.strictEqual(after.spawned, before.spawned)
      assert.strictEqual(after.workers, 3)
    })
  )
})

describe("PoolManager worker retirement", () => {
  it.effect("retires idle workers above min after idleWorkerTimeout, never below min or busy ones", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 1, idleWorkerTimeout: "2 seconds", clientsDeadline: "1 hour" })
      const clients = yield* Effect.forEach(Array.from({ length: 4 }), () => connect(manager))
      assert.strictEqual((yield* manager.stats).workers, 4)
      // two leave, two stay busy
      yield* clients[0]!.end
      yield* clients[1]!.end
      yield* settle
      assert.strictEqual((yield* manager.stats).idle, 2)
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual((yield* manager.stats).workers, 4)
      yield* TestClock.adjust("1 millis")
      yield* settle
      let stats = yield* manager.stats
      // both idle ones are above min (busy ones count toward it)
      assert.strictEqual(stats.workers, 2)
      assert.strictEqual(stats.busy, 2)
      yield* clients[2]!.end
      yield* clients[3]!.end
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* settle
      stats = yield* manager.stats
      assert.strictEqual(stats.workers, 1)
      assert.strictEqual(stats.idle, 1)
    })
  )

  it.effect(
    "a worker idle for less than idleWorkerTimeout is kept when the reaper wakes, and retired after its own",
    () =>
      Effect.gen(function* () {
        const manager = yield* started({
          minWorkersCount: 0,
          idleWorkerTimeout: "2 seconds",
          clientsDeadline: "1 hour"
        })
        const first = yield* connect(manager)
        const second = yield* connect(manager)
        yield* first.end
        yield* settle
        yield* TestClock.adjust("1500 millis")
        yield* second.end
        yield* settle
        assert.strictEqual((yield* manager.stats).idle, 2)
        // The reaper wakes for the first worker's expiry; the second has been idle 500 ms.
        yield* TestClock.adjust("500 millis")
        yield* settle
        let stats = yield* manager.stats
        assert.strictEqual(stats.workers, 1, "only the worker idle for 2 s is retired")
        assert.strictEqual(stats.retired, 1)
        yield* TestClock.adjust("1499 millis")
        yield* settle
        assert.strictEqual((yield* manager.stats).workers, 1, "the second worker is kept until its own 2 s")
        yield* TestClock.adjust("1 millis")
        yield* settle
        stats = yield* manager.stats
        assert.strictEqual(stats.workers, 0)
        assert.strictEqual(stats.retired, 2)
      })
  )

  it.effect("a config change wakes the reaper, which keeps a worker idle for less than the timeout", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 0, idleWorkerTimeout: "2 seconds", clientsDeadline: "1 hour" })
      const client = yield* connect(manager)
      yield* client.end
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* manager.setConfig({ idleWorkerTimeout: "3 seconds" })
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 1, "idle 1 s of 3 s: kept")
      yield* TestClock.adjust("1999 millis")
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 1, "the new timeout counts from when it went idle")
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 0)
    })
  )
})

describe("PoolManager messages", () => {
  it.effect("deadline closes a connection that sends nothing", () =>
    Effect.gen(function* () {
      const manager = yield* started({ clientsDeadline: "3 seconds" })
      const client = yield* connect(manager)
      yield* TestClock.adjust("2999 millis")
      assert.isFalse(yield* client.isClosed)
      yield* client.send("ping")
      assert.strictEqual(yield* nextReply(client), "OK:ping")
      yield* TestClock.adjust("2999 millis")
      assert.isFalse(yield* client.isClosed)
      yield* TestClock.adjust("1 millis")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByDeadline, 1)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(stats.idle, 1)
    })
  )

  it.effect("a reply the client does not read within clientsDeadline drops the connection and frees the worker", () =>
    Effect.gen(function* () {
      const replies: Array<string> = []
      const manager = yield* PoolManager.make({ clientsDeadline: "1 second", maxWorkersCount: 1 }, (conn, body) =>
        // 8 bytes per write against a 10-byte transport: the second write is
        // queued, and reports the transport full, so the callback waits for the client.
        Effect.andThen(conn.write("12345678"), conn.write("12345678")).pipe(
          Effect.tap(() => Effect.sync(() => replies.push(decoder.decode(body))))
        )
      )
      yield* manager.start
      // A client that reads within the deadline is served.
      const reader = yield* connect(manager, { writeBufferBytes: 10 })
      yield* reader.send("a")
      yield* settle
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(replies, [])
      assert.strictEqual(yield* nextReply(reader), "1234567812345678")
      yield* settle
      assert.deepStrictEqual(replies, ["a"])
      yield* reader.end
      yield* serverClosed(reader)
      yield* settle
      // A client that never reads: the waiting write fails after the deadline, the
      // connection is dropped as if it had missed a read deadline, the worker is free.
      const stuck = yield* connect(manager, { writeBufferBytes: 10 })
      yield* stuck.send("b")
      yield* settle
      yield* TestClock.adjust("999 millis")
      assert.isFalse(yield* stuck.isClosed)
      yield* TestClock.adjust("1 millis")
      yield* serverClosed(stuck)
      assert.deepStrictEqual(replies, ["a"])
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByDeadline, 1)
      assert.strictEqual(stats.callbackFailures, 0)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(stats.idle, 1)
    })
  )

  it.effect("several messages on one connection, and a body split over reads", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4 }, seen)
      const client = yield* connect(manager)
      yield* client.send("ab")
      assert.strictEqual(yield* nextReply(client), "OK:ab")
      // 10 bytes with a 4-byte buffer: reads of 4, 4 and 2 make one message
      yield* client.send("abcdefghij")
      assert.strictEqual(yield* nextReply(client), "OK:abcdefghij")
      // two sends that both arrived before the worker reads: 4 + 2 bytes, one message
      const { client: early, connection } = yield* MemoryConnection.make()
      yield* early.send("abcd")
      yield* early.send("ef")
      yield* manager.put(connection)
      assert.strictEqual(yield* nextReply(early), "OK:abcdef")
      // 6 + 2 bytes buffered: the read of 2 after 4 ends the first message
      const { client: late, connection: second } = yield* MemoryConnection.make()
      yield* late.send("uvwxyz")
      yield* late.send("12")
      yield* manager.put(second)
      assert.strictEqual(yield* nextReply(late), "OK:uvwxyz")
      assert.strictEqual(yield* nextReply(late), "OK:12")
      assert.deepStrictEqual(seen, ["ab", "abcdefghij", "abcdef", "uvwxyz", "12"])
    })
  )

  it.effect("a message of exactly bufferSize multiples is delivered without waiting for the deadline", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4, clientsDeadline: "3 seconds" }, seen)
      const client = yield* connect(manager)
      yield* client.send("abcdefgh")
      assert.strictEqual(yield* nextReply(client), "OK:abcdefgh")
      assert.deepStrictEqual(seen, ["abcdefgh"])
      assert.isFalse(yield* client.isClosed)
    })
  )

  it.effect("a message over maxMessageBytes closes its connection", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4, maxMessageBytes: 8 }, seen)
      const client = yield* connect(manager)
      yield* client.send("12345678")
      assert.strictEqual(yield* nextReply(client), "OK:12345678")
      yield* client.send("123456789")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedBySize, 1)
      assert.deepStrictEqual(seen, ["12345678"])
      assert.strictEqual(stats.busy, 0)
    })
  )

  it.effect("bytes sent before the client closes are still delivered", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({}, seen)
      const client = yield* connect(manager)
      yield* client.send("last words")
      yield* client.end
      yield* serverClosed(client)
      assert.deepStrictEqual(seen, ["last words"])
      assert.strictEqual((yield* manager.stats).closedByPeer, 1)
    })
  )
})
