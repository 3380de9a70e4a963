import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { MemoryConnection, PoolError } from "../src/index.ts"
import { settle, started } from "./utils/manager.ts"
import { soon } from "./utils/soon.ts"

const from = (host: string) => MemoryConnection.make({ remoteAddress: `${host}:1234`, remoteHost: host })

describe("PoolManager per-address accounting", () => {
  it.effect("a connection that ends frees exactly its own slot of its host", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxConnectionsPerAddress: 2, clientsDeadline: "1 hour" })
      const a = yield* from("10.0.0.1")
      yield* manager.put(a.connection)
      yield* manager.put((yield* from("10.0.0.1")).connection)
      yield* a.client.end
      yield* settle
      yield* manager.put((yield* from("10.0.0.1")).connection)
      const third = yield* Effect.flip(manager.put((yield* from("10.0.0.1")).connection))
      assert.instanceOf(third, PoolError.AddressLimitError, "two of the host's connections are still open")
    })
  )

  it.effect("with a limit of 1, the host can connect again once its connection ended", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxConnectionsPerAddress: 1, clientsDeadline: "1 hour" })
      for (let round = 0; round < 3; round++) {
        const c = yield* from("10.0.0.1")
        yield* manager.put(c.connection)
        assert.instanceOf(
          yield* Effect.flip(manager.put((yield* from("10.0.0.1")).connection)),
          PoolError.AddressLimitError
        )
        yield* c.client.end
        yield* settle
      }
    })
  )

  it.effect("a put refused as busy does not hold a slot of its host", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, maxConnectionsPerAddress: 2, clientsDeadline: "1 hour" })
      yield* manager.put((yield* from("10.0.0.1")).connection)
      for (let i = 0; i < 3; i++) {
        const error = yield* Effect.flip(manager.put((yield* from("10.0.0.1")).connection))
        assert.instanceOf(error, PoolError.PoolBusyError, `put ${i}`)
      }
    })
  )

  it.effect("a put that timed out in the queue does not hold a slot of its host", () =>
    Effect.gen(function* () {
      const manager = yield* started({
        maxWorkersCount: 1,
        maxConnectionsPerAddress: 1,
        admissionPolicy: "queue",
        queueTimeout: "1 second",
        clientsDeadline: "1 hour"
      })
      const busy = yield* from("10.0.0.2")
      yield* manager.put(busy.connection)
      const waiting = yield* Effect.forkChild(Effect.flip(manager.put((yield* from("10.0.0.1")).connection)))
      yield* settle
      yield* TestClock.adjust("1 second")
      assert.instanceOf(yield* soon(Fiber.join(waiting), "the waiting put to complete"), PoolError.PoolBusyError)
      yield* busy.client.end
      yield* settle
      yield* soon(manager.put((yield* from("10.0.0.1")).connection), "the host admitted again")
    })
  )

  it.effect("a connection put again while no per-address limit applied never frees another's slot", () =>
    Effect.gen(function* () {
      const manager = yield* started({ maxWorkersCount: 1, maxConnectionsPerAddress: 1, clientsDeadline: "1 hour" })
      const other = yield* from("10.0.0.2")
      yield* manager.put(other.connection)
      const a = yield* from("10.0.0.1")
      // counted under its host, then refused: the caller keeps it
      assert.instanceOf(yield* Effect.flip(manager.put(a.connection)), PoolError.PoolBusyError)
      yield* manager.setConfig({ maxConnectionsPerAddress: 0, maxWorkersCount: 3 })
      yield* manager.put(a.connection)
      yield* manager.setConfig({ maxConnectionsPerAddress: 1 })
      yield* manager.put((yield* from("10.0.0.1")).connection)
      yield* a.client.end
      yield* settle
      const error = yield* Effect.flip(manager.put((yield* from("10.0.0.1")).connection))
      assert.instanceOf(error, PoolError.AddressLimitError)
    })
  )
})

describe("PoolManager queue hand-over, with put fibers that yield every few operations", () => {
  // A fiber yields to the scheduler once its operation budget runs out, so
  // with a tiny budget a waiting put can be caught between any two steps:
  // each k below stops it at a different one.
  const yieldingOften = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, Scheduler.MaxOpsBeforeYield, 3)
  const queued = {
    maxWorkersCount: 1,
    admissionPolicy: "queue",
    queueTimeout: "1 hour",
    clientsDeadline: "1 hour"
  } as const

  /** A manager with one connection served and a put from a yielding fiber stopped after `k` turns. */
  const waitingAfter = (k: number) =>
    Effect.gen(function* () {
      const manager = yield* started(queued)
      yield* manager.put((yield* from("10.0.0.1")).connection)
      const put = yield* Effect.forkChild(yieldingOften(manager.put((yield* from("10.0.0.2")).connection)), {
        startImmediately: true
      })
      for (let i = 0; i < k; i++) yield* Effect.yieldNow
      return { manager, put }
    })

  it.effect("a put handed a slot at any step of its queueing goes on at once", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 12; k++) {
        const { manager, put } = yield* waitingAfter(k)
        yield* manager.setConfig({ maxWorkersCount: 2 })
        yield* soon(Fiber.join(put), `the put admitted by the raised maximum (k=${k})`)
        assert.strictEqual((yield* manager.stats).busy, 2, `k=${k}`)
        yield* manager.stop
      }
    })
  )

  it.effect("a put interrupted at any step after it was handed a slot leaves the slot usable", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 12; k++) {
        const { manager, put } = yield* waitingAfter(k)
        yield* manager.setConfig({ maxWorkersCount: 2 })
        yield* Fiber.interrupt(put)
        yield* settle
        yield* manager.setConfig({ admissionPolicy: "reject" })
        const busy = (yield* manager.stats).busy
        const next = yield* Effect.exit(manager.put((yield* from("10.0.0.3")).connection))
        assert.strictEqual(Exit.isSuccess(next), busy < 2, `k=${k}: busy=${busy}, next put ${next._tag}`)
        yield* manager.stop
      }
    })
  )

  it.effect("a put interrupted at any step after stop rejected it frees no slot", () =>
    Effect.gen(function* () {
      for (let k = 0; k < 12; k++) {
        const { manager, put } = yield* waitingAfter(k)
        const stopping = yield* Effect.forkChild(manager.stop, { startImmediately: true })
        yield* Fiber.interrupt(put)
        yield* soon(Fiber.join(stopping), "stop to complete")
        yield* manager.setConfig({ admissionPolicy: "reject" })
        yield* manager.start
        yield* manager.put((yield* from("10.0.0.1")).connection)
        const error = yield* Effect.flip(manager.put((yield* from("10.0.0.3")).connection))
        assert.instanceOf(error, PoolError.PoolBusyError, `k=${k}`)
        yield* manager.stop
      }
    })
  )
})

describe("PoolManager queue without a timeout", () => {
  it.effect("an infinite queueTimeout waits as long as it takes", () =>
    Effect.gen(function* () {
      const manager = yield* started({
        maxWorkersCount: 1,
        admissionPolicy: "queue",
        queueTimeout: Duration.infinity,
        clientsDeadline: "1 day"
      })
      const busy = yield* from("10.0.0.1")
      yield* manager.put(busy.connection)
      const waiting = yield* Effect.forkChild(manager.put((yield* from("10.0.0.2")).connection))
      yield* settle
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(waiting.pollUnsafe(), "still waiting")
      assert.strictEqual((yield* manager.stats).waiting, 1)
      yield* busy.client.end
      yield* soon(Fiber.join(waiting), "the waiting put admitted")
    })
  )
})
