/**
 * A randomized test: seeded sequences of put, send, client close, setConfig,
 * stop, start and clock moves, checking after every step that busy stays
 * within max, that workers stay at or above min while running, and at the
 * end that every message sent on an admitted connection reached the callback.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Connection, PoolManager } from "../src/index.ts"
import { echo, type Seen, settle } from "./utils.ts"

/** mulberry32: a tiny seeded PRNG, so a failing sequence can be replayed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const run = (seed: number, steps: number) =>
  Effect.gen(function* () {
    const random = prng(seed)
    const pick = (n: number) => Math.floor(random() * n)
    const seen: Seen = []
    const sent: Array<string> = []
    let min = 1
    let max = 4
    const manager = yield* PoolManager.make(
      { minWorkersCount: min, maxWorkersCount: max, clientsDeadline: "5 seconds", idleWorkerTimeout: "2 seconds" },
      echo(seen)
    )
    yield* manager.start
    let running = true
    let allowedBusy = max
    const clients: Array<Connection.MemoryClient> = []
    let nextMessage = 0
    const trace: Array<string> = []

    for (let step = 0; step < steps; step++) {
      const op = pick(10)
      if (op <= 2) {
        const { client, connection } = yield* Connection.makeMemory()
        const exit = yield* Effect.exit(manager.put(connection))
        trace.push(`put:${exit._tag}`)
        if (exit._tag === "Success") {
          clients.push(client)
          assert.isTrue(running, `seed ${seed}: put succeeded while stopped`)
        } else {
          const busy = (yield* manager.stats).busy
          const tag = exit.cause.toString()
          if (running) assert.isTrue(max > 0 && busy >= max, `seed ${seed}: put refused below max: ${tag}`)
        }
      } else if (op <= 5 && clients.length > 0) {
        const client = clients[pick(clients.length)]!
        if (!(yield* client.isClosed)) {
          const message = `m${nextMessage++}`
          sent.push(message)
          yield* client.send(message)
          trace.push(`send:${message}`)
        }
      } else if (op === 6 && clients.length > 0) {
        const [client] = clients.splice(pick(clients.length), 1)
        yield* client!.end
        trace.push("end")
      } else if (op === 7) {
        max = pick(3) === 0 ? 0 : 1 + pick(6)
        min = pick(Math.min(max === 0 ? 6 : max, 5) + 1)
        yield* manager.setConfig({ minWorkersCount: min, maxWorkersCount: max })
        trace.push(`config:${min}/${max}`)
        const busy = (yield* manager.stats).busy
        allowedBusy = max === 0 ? Infinity : Math.max(max, busy)
      } else if (op === 8) {
        if (running && pick(4) === 0) {
          // sometimes bytes arrive just before the stop, with no chance to be read first
          const open = clients.length > 0 ? clients[pick(clients.length)]! : undefined
          if (open !== undefined && !(yield* open.isClosed)) {
            const message = `m${nextMessage++}`
            sent.push(message)
            yield* open.send(message)
          }
          yield* manager.stop
          running = false
          trace.push("stop")
        } else if (!running) {
          yield* manager.start
          running = true
          trace.push("start")
        }
      } else {
        const millis = pick(3000)
        yield* TestClock.adjust(millis)
        trace.push(`clock:${millis}`)
      }
      yield* settle
      const stats = yield* manager.stats
      allowedBusy = max === 0 ? Infinity : Math.max(max, Math.min(allowedBusy, stats.busy))
      const context = `seed ${seed}, step ${step}, trace ${trace.slice(-8).join(" ")}`
      assert.isAtMost(stats.busy, allowedBusy, `busy above max: ${context}`)
      assert.strictEqual(stats.running, running, context)
      if (running) assert.isAtLeast(stats.workers, min, `workers below min: ${context}`)
      else assert.strictEqual(stats.workers, 0, `workers left after stop: ${context}`)
    }
    // A graceful stop handles every byte that arrived before it.
    yield* manager.stop
    assert.sameMembers(seen, sent, `seed ${seed}: messages lost or invented`)
    assert.strictEqual(seen.length, sent.length)
    const stats = yield* manager.stats
    assert.strictEqual(stats.busy, 0)
    assert.strictEqual(stats.workers, 0)
  })

describe("PoolManager randomized", () => {
  for (const seed of [1, 2, 3, 42, 2026, 90210]) {
    it.effect(`seed ${seed}: invariants hold and no message is lost`, () => run(seed, 300))
  }
})
