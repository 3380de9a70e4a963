import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolManager } from "../src/index.ts"
import { connect, echo, settle, started } from "./utils/manager.ts"
import { soon } from "./utils/soon.ts"

/** Runs `effect` in a fiber that yields to the scheduler every few operations. */
const yieldingOften = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Scheduler.MaxOpsBeforeYield, 3)

describe("PoolManager worker reaping", () => {
  it.effect("a worker busy for longer than idleWorkerTimeout is kept idle for a full timeout once it is free", () =>
    Effect.gen(function* () {
      const manager = yield* started({ idleWorkerTimeout: "2 seconds", clientsDeadline: "1 hour" })
      const client = yield* connect(manager)
      yield* TestClock.adjust("10 seconds")
      yield* client.end
      yield* settle
      assert.deepInclude(yield* manager.stats, { workers: 1, idle: 1, retired: 0 })
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual((yield* manager.stats).workers, 1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepInclude(yield* manager.stats, { workers: 0, retired: 1 })
    })
  )

  it.effect("a long-busy worker does not hold back the retirement of expired idle ones", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 1, idleWorkerTimeout: "2 seconds", clientsDeadline: "1 hour" })
      // the prespawned worker is the oldest, and stays busy
      const clients = yield* Effect.forEach([1, 2, 3], () => connect(manager))
      yield* clients[1]!.end
      yield* clients[2]!.end
      yield* settle
      assert.deepInclude(yield* manager.stats, { workers: 3, busy: 1, idle: 2 })
      yield* TestClock.adjust("2 seconds")
      yield* settle
      // min is 1, and the busy worker counts toward it: both idle ones go
      assert.deepInclude(yield* manager.stats, { workers: 1, busy: 1, idle: 0, retired: 2 })
    })
  )

  it.effect("a config change that leaves the minimum met does not renew the idle workers' time", () =>
    Effect.gen(function* () {
      const manager = yield* started({ minWorkersCount: 2, idleWorkerTimeout: "2 seconds" })
      yield* TestClock.adjust("5 seconds")
      yield* manager.setConfig({ minWorkersCount: 2, bufferSize: 64 })
      yield* manager.setConfig({ minWorkersCount: 0 })
      yield* settle
      assert.deepInclude(yield* manager.stats, { workers: 0, retired: 2 }, "both idle for 5 s of 2 s")
    })
  )

  it.effect("raising the minimum while a put waits for its worker spawns only up to the minimum", () =>
    Effect.gen(function* () {
      const manager = yield* started({})
      const { connection } = yield* MemoryConnection.make()
      const putting = yield* Effect.forkChild(manager.put(connection), { startImmediately: true })
      assert.strictEqual((yield* manager.stats).accepted, 0, "the put waits for a worker")
      yield* manager.setConfig({ minWorkersCount: 2 })
      yield* soon(Fiber.join(putting), "the put to complete")
      yield* settle
      assert.deepInclude(yield* manager.stats, { workers: 2, busy: 1, idle: 1, spawned: 2 })
    })
  )

  it.effect("a put that takes an expired idle worker while the reaper retires several keeps it", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 16; k++) {
        const manager = yield* PoolManager.make({ idleWorkerTimeout: "2 seconds", clientsDeadline: "1 hour" }, echo([]))
        // The reaper runs in a fiber forked by start: it yields every few operations too.
        yield* yieldingOften(manager.start)
        const clients = yield* Effect.forEach([1, 2, 3], () => connect(manager))
        yield* Effect.forEach(clients, (client) => client.end)
        yield* settle
        assert.deepInclude(yield* manager.stats, { workers: 3, idle: 3 })
        // The put runs alongside the reaper, k steps after it wakes.
        const putting = yield* Effect.forkChild(
          Effect.andThen(Effect.repeat(Effect.yieldNow, { times: k }), connect(manager))
        )
        yield* TestClock.adjust("2 seconds")
        const client = yield* soon(Fiber.join(putting), `the put (k=${k}) completed`)
        yield* settle
        assert.deepInclude(
          yield* manager.stats,
          { workers: 1, busy: 1 },
          `k=${k}: the idle workers retired, the busy one kept`
        )
        yield* client.end
        yield* settle
        assert.deepInclude(yield* manager.stats, { workers: 1, idle: 1 }, `k=${k}: the put's worker is idle again`)
        yield* manager.stop
      }
    })
  )
})
