import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolError } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"
import { nextReply, serverClosed, soon } from "./utils/soon.ts"

const memory = (host = "10.0.0.1") => MemoryConnection.make({ remoteAddress: `${host}:1234`, remoteHost: host })

describe("PoolManager admission policy", () => {
  it.effect("queue: a put waits for a worker, first come first served, then is admitted", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "5 seconds" })
      const first = yield* connect(manager)
      const a = yield* memory()
      const b = yield* memory()
      const waitingA = yield* Effect.forkChild(manager.put(a.connection))
      yield* settle
      const waitingB = yield* Effect.forkChild(manager.put(b.connection))
      yield* settle
      assert.strictEqual((yield* manager.stats).waiting, 2)
      assert.isUndefined(waitingA.pollUnsafe())
      yield* first.end
      yield* settle
      yield* soon(Fiber.join(waitingA), "put a to complete")
      assert.isUndefined(waitingB.pollUnsafe())
      yield* a.client.send("a")
      assert.strictEqual(yield* nextReply(a.client), "OK:a")
      yield* a.client.end
      yield* soon(Fiber.join(waitingB), "put b to complete")
      const stats = yield* manager.stats
      assert.strictEqual(stats.waiting, 0)
      assert.strictEqual(stats.accepted, 3)
      assert.strictEqual(stats.rejected, 0)
    })
  )

  it.effect("queue: a put that waits past queueTimeout fails with PoolBusyError", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "2 seconds" })
      yield* connect(manager)
      const late = yield* memory()
      const waiting = yield* Effect.forkChild(Effect.flip(manager.put(late.connection)))
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* soon(Fiber.join(waiting), "the waiting put to complete")
      assert.instanceOf(error, PoolError.PoolBusyError)
      const stats = yield* manager.stats
      assert.strictEqual(stats.queueTimeouts, 1)
      assert.strictEqual(stats.rejected, 1)
      assert.strictEqual(stats.waiting, 0)
    })
  )

  it.effect("queue: at most queueSize wait; the next is refused at once", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueSize: 1 })
      yield* connect(manager)
      yield* Effect.forkChild(manager.put((yield* memory()).connection))
      yield* settle
      const error = yield* Effect.flip(manager.put((yield* memory()).connection))
      assert.instanceOf(error, PoolError.PoolBusyError)
      assert.strictEqual((yield* manager.stats).waiting, 1)
    })
  )

  it.effect("queue: stop fails the waiting puts with NotRunningError", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 hour" })
      yield* connect(manager)
      const waiting = yield* Effect.forkChild(Effect.flip(manager.put((yield* memory()).connection)))
      yield* settle
      yield* manager.stop
      assert.instanceOf(yield* soon(Fiber.join(waiting), "the waiting put to complete"), PoolError.NotRunningError)
    })
  )

  it.effect("queue: raising max admits the waiting puts", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 hour" })
      yield* connect(manager)
      const waiting = yield* Effect.forkChild(manager.put((yield* memory()).connection))
      yield* settle
      yield* manager.setConfig({ maxWorkersCount: 2 })
      yield* soon(Fiber.join(waiting), "the waiting put to complete")
      assert.strictEqual((yield* manager.stats).busy, 2)
    })
  )

  it.effect("switching the policy live: reject refuses at once again", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, admissionPolicy: "queue" })
      yield* connect(manager)
      yield* manager.setConfig({ admissionPolicy: "reject" })
      const error = yield* Effect.flip(manager.put((yield* memory()).connection))
      assert.instanceOf(error, PoolError.PoolBusyError)
    })
  )
})

describe("PoolManager per-connection limits", () => {
  it.effect("maxConnectionsPerAddress caps one host, IPv4-mapped IPv6 included, not the others", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxConnectionsPerAddress: 2 })
      yield* manager.put((yield* memory("10.0.0.1")).connection)
      yield* manager.put((yield* memory("::ffff:10.0.0.1")).connection)
      const refused = yield* Effect.flip(manager.put((yield* memory("10.0.0.1")).connection))
      assert.instanceOf(refused, PoolError.AddressLimitError)
      assert.include(refused.message, "10.0.0.1")
      const v6 = yield* memory("2001:db8::1")
      yield* manager.put(v6.connection)
      yield* manager.put((yield* memory("2001:db8::1")).connection)
      assert.instanceOf(
        yield* Effect.flip(manager.put((yield* memory("2001:db8::1")).connection)),
        PoolError.AddressLimitError
      )
      // a connection that ends frees its host's slot
      yield* v6.client.end
      yield* settle
      yield* manager.put((yield* memory("2001:db8::1")).connection)
      assert.strictEqual((yield* manager.stats).rejectedByAddress, 2)
    })
  )

  it.effect("maxMessagesPerConnection closes a connection after that many messages", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxMessagesPerConnection: 2 })
      const client = yield* connect(manager)
      yield* client.send("1")
      assert.strictEqual(yield* nextReply(client), "OK:1")
      yield* client.send("2")
      assert.strictEqual(yield* nextReply(client), "OK:2")
      yield* serverClosed(client)
      yield* settle
      assert.strictEqual((yield* manager.stats).closedByMessageLimit, 1)
    })
  )
})
