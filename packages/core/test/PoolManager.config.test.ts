import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolError } from "../src/index.ts"
import { connect, settle, started } from "./utils/manager.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"

describe("PoolManager.setConfig", () => {
  it.effect("config returns the validated config, with defaults", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 4 })
      const config = yield* manager.config
      assert.strictEqual(config.maxWorkersCount, 4)
      assert.strictEqual(config.bufferSize, 5120)
      assert.isTrue(Duration.equals(config.clientsDeadline, Duration.seconds(3)))
    })
  )

  it.effect("raising max admits more at once", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1 })
      yield* connect(manager)
      const { connection } = yield* MemoryConnection.make()
      assert.instanceOf(yield* Effect.flip(manager.put(connection)), PoolError.PoolBusyError)
      yield* manager.setConfig({ maxWorkersCount: 2 })
      yield* manager.put(connection)
      assert.strictEqual((yield* manager.stats).busy, 2)
    })
  )

  it.effect("lowering max never interrupts busy workers, and admits again once below it", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 3, clientsDeadline: "1 hour" })
      const clients = yield* Effect.forEach(Array.from({ length: 3 }), () => connect(manager))
      yield* manager.setConfig({ maxWorkersCount: 1 })
      // all three are still served
      for (const [i, client] of clients.entries()) {
        yield* client.send(`m${i}`)
        assert.strictEqual(yield* nextReply(client), `OK:m${i}`)
      }
      const { connection } = yield* MemoryConnection.make()
      assert.instanceOf(yield* Effect.flip(manager.put(connection)), PoolError.PoolBusyError)
      yield* clients[0]!.end
      yield* clients[1]!.end
      yield* settle
      // one busy left: still at the new max
      assert.instanceOf(yield* Effect.flip(manager.put(connection)), PoolError.PoolBusyError)
      yield* clients[2]!.end
      yield* settle
      yield* manager.put(connection)
      assert.strictEqual((yield* manager.stats).busy, 1)
    })
  )

  it.effect("raising min spawns workers at once", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 1 })
      assert.strictEqual((yield* manager.stats).workers, 1)
      yield* manager.setConfig({ minWorkersCount: 4 })
      const stats = yield* manager.stats
      assert.strictEqual(stats.workers, 4)
      assert.strictEqual(stats.idle, 4)
    })
  )

  it.effect("raising min while connections are busy counts them toward min", () =>
    Effect.gen(function* () {
      const manager = yield* started({ clientsDeadline: "1 hour" })
      yield* Effect.forEach(Array.from({ length: 2 }), () => connect(manager))
      yield* manager.setConfig({ minWorkersCount: 3 })
      const stats = yield* manager.stats
      assert.strictEqual(stats.workers, 3)
      assert.strictEqual(stats.busy, 2)
      assert.strictEqual(stats.idle, 1)
    })
  )

  it.effect("lowering min lets the reaper retire the surplus after idleWorkerTimeout", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 5, idleWorkerTimeout: "2 seconds" })
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* manager.stats).workers, 5)
      yield* manager.setConfig({ minWorkersCount: 2 })
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 2)
    })
  )

  it.effect("a shorter idleWorkerTimeout applies to a sleeping reaper", () =>
    Effect.gen(function* () {
      const manager = yield* started({ idleWorkerTimeout: "1 hour" })
      const client = yield* connect(manager)
      yield* client.end
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 1)
      yield* TestClock.adjust("1 second")
      yield* manager.setConfig({ idleWorkerTimeout: "1 second" })
      yield* settle
      assert.strictEqual((yield* manager.stats).workers, 0)
    })
  )

  it.effect("an invalid input fails with ConfigError and leaves the config unchanged", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 2, maxWorkersCount: 4 })
      const before = yield* manager.config
      const error = yield* Effect.flip(manager.setConfig({ minWorkersCount: 5 }))
      assert.instanceOf(error, PoolError.ConfigError)
      assert.include(error.message, "minWorkersCount = 5")
      const negative = yield* Effect.flip(manager.setConfig({ maxWorkersCount: -1, bufferSize: Number.NaN }))
      assert.include(negative.message, "maxWorkersCount = -1")
      assert.include(negative.message, "bufferSize = NaN")
      assert.deepStrictEqual(yield* manager.config, before)
      assert.strictEqual((yield* manager.stats).workers, 2)
    })
  )

  it.effect("bufferSize and clientsDeadline change for the next read", () =>
    Effect.gen(function* () {
      const manager = yield* started({ clientsDeadline: "10 seconds" })
      const client = yield* connect(manager)
      yield* manager.setConfig({ clientsDeadline: "1 second", bufferSize: 2 })
      // the pending wait keeps its deadline; the next one uses the new one
      yield* client.send("abcde")
      assert.strictEqual(yield* nextReply(client), "OK:abcde")
      yield* TestClock.adjust("1 second")
      yield* serverClosed(client)
      assert.strictEqual((yield* manager.stats).closedByDeadline, 1)
    })
  )

  it.effect("setConfig while stopped applies at the next start", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      yield* manager.stop
      yield* manager.setConfig({ minWorkersCount: 3 })
      assert.strictEqual((yield* manager.stats).workers, 0)
      yield* manager.start
      assert.strictEqual((yield* manager.stats).workers, 3)
    })
  )
})
