/**
 * A model-based randomized test of the manager, with `Arbitrary` commands
 * (property support of `@effect/vitest`, shrunk to a short failing sequence):
 * put / client send / client close / setConfig / stop / start / interrupting
 * a waiting put / clock moves, under both admission policies.
 *
 * After every scheduler turn (not only once a step settled): busy <= workers,
 * busy + idle <= workers, workers never above max, waiting never above
 * queueSize (both once they may have been lowered: a lower max or queueSize
 * never ends what is already there, so the bound is what they shrink toward).
 * After every step: workers >= min while running, none after a stop. At the
 * end: every message sent on a connection whose put succeeded reached the
 * callback and was answered, and nothing was served on, nor was closed by the
 * pool, a connection whose put failed or was interrupted.
 *
 * The seed is fixed so that `npm test` is repeatable; `POOL_MODEL_SEED=n`
 * explores another sequence of runs, and a failure prints a replay token.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Exit, type Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, MemoryConnection, PoolManager } from "../src/index.ts"
import { echo, type Seen } from "./utils/manager.ts"
import { soon } from "./utils/soon.ts"

const int = (maximum: number) => Schema.Int.check(Schema.isBetween({ minimum: 0, maximum }))

/** One command: which operation (by range, so some are likelier), and two free parameters. */
const command = Arbitrary.schema(Schema.Tuple([int(99), int(999), int(999)]))
const commands = Arbitrary.array(command, { minLength: 20, maxLength: 80 })

type Outcome = "pending" | "admitted" | "refused"

interface Client {
  readonly id: number
  readonly memory: MemoryConnection.MemoryClient
  outcome: Outcome
  /** Whether the client closed its sending side (later sends are dropped, as on a socket). */
  ended: boolean
  fiber: Fiber.Fiber<void, unknown> | undefined
  /** Messages sent while the connection was open, by its outcome at the end. */
  readonly sent: Array<string>
}

const model = (steps: ReadonlyArray<readonly [number, number, number]>) =>
  Effect.gen(function* () {
    const seen: Seen = []
    const base: ManagerConfig.Input = {
      minWorkersCount: 1,
      maxWorkersCount: 2,
      admissionPolicy: "queue",
      clientsDeadline: "5 seconds",
      idleWorkerTimeout: "2 seconds",
      queueTimeout: "3 seconds",
      queueSize: 3
    }
    const manager = yield* PoolManager.make(base, echo(seen))
    yield* manager.start
    let config = yield* manager.config
    let running = true
    // What workers and waiting may reach: their configured bounds, or what is
    // left above a bound since lowered (which may only shrink).
    let workerBound = config.maxWorkersCount === 0 ? Infinity : config.maxWorkersCount
    let waitingBound = config.queueSize
    const clients: Array<Client> = []
    const trace: Array<string> = []
    const where = () => `after ${trace.join(" ")}`

    const check = Effect.gen(function* () {
      const stats = yield* manager.stats
      const at = `workers=${stats.workers} busy=${stats.busy} idle=${stats.idle} waiting=${stats.waiting} ${where()}`
      assert.isAtMost(stats.busy, stats.workers, `busy above workers: ${at}`)
      assert.isAtMost(stats.busy + stats.idle, stats.workers, `busy + idle above workers: ${at}`)
      const max = config.maxWorkersCount === 0 ? Infinity : config.maxWorkersCount
      workerBound = Math.max(max, Math.min(workerBound, stats.workers))
      assert.isAtMost(stats.workers, workerBound, `workers above max: ${at}`)
      waitingBound = Math.max(config.queueSize, Math.min(waitingBound, stats.waiting))
      assert.isAtMost(stats.waiting, waitingBound, `waiting above queueSize: ${at}`)
      return stats
    })

    // Lets every fiber that can run do so, checking the invariants at every turn.
    const settle = Effect.gen(function* () {
      for (let turn = 0; turn < 12; turn++) {
        yield* Effect.yieldNow
        yield* check
        yield* TestClock.adjust(0)
        yield* check
      }
      for (const client of clients) {
        if (client.outcome !== "pending") continue
        const exit = client.fiber!.pollUnsafe()
        if (exit !== undefined) client.outcome = Exit.isSuccess(exit) ? "admitted" : "refused"
      }
    })

    const pick = <A>(list: ReadonlyArray<A>, n: number): A | undefined =>
      list.length === 0 ? undefined : list[n % list.length]

    for (const [n, a, b] of steps) {
      // Generated numbers lean small (they shrink toward 0): spread them over the operations.
      const op = (n * 37 + b) % 100
      if (op < 22 || (op >= 80 && op < 86)) {
        const memory = yield* MemoryConnection.make()
        const client: Client = {
          id: clients.length,
          memory: memory.client,
          outcome: "pending",
          ended: false,
          fiber: undefined,
          sent: []
        }
        clients.push(client)
        client.fiber = yield* Effect.forkChild(manager.put(memory.connection), { startImmediately: true })
        trace.push(`put(c${client.id})`)
        // The put ran as far as it could without waiting: the numbers must add up already.
        yield* check
        const exit = client.fiber.pollUnsafe()
        if (exit !== undefined && Exit.isFailure(exit) && running && config.admissionPolicy === "reject") {
          const stats = yield* manager.stats
          assert.isTrue(
            config.maxWorkersCount > 0 && stats.busy >= config.maxWorkersCount,
            `refused below max ${where()}`
          )
        }
        if (exit !== undefined && Exit.isSuccess(exit)) assert.isTrue(running, `put succeeded while stopped ${where()}`)
        if (op >= 80) {
          // Interrupted at an arbitrary instant: at once, or after a few scheduler turns.
          for (let turn = 0; turn < b % 4; turn++) yield* Effect.yieldNow
          client.fiber.interruptUnsafe()
          trace.push(`interrupt(c${client.id})`)
        }
      } else if (op < 47) {
        const client = pick(clients, a)
        if (client !== undefined && !client.ended && !(yield* client.memory.isClosed)) {
          const message = `c${client.id}m${client.sent.length}`
          client.sent.push(message)
          yield* client.memory.send(message)
          trace.push(`send(${message})`)
        }
      } else if (op < 53) {
        const client = pick(clients, a)
        if (client !== undefined) {
          yield* client.memory.end
          client.ended = true
          trace.push(`end(c${client.id})`)
        }
      } else if (op < 63) {
        const max = b % 3 === 0 ? 0 : 1 + (b % 5)
        const min = a % (Math.min(max === 0 ? 4 : max, 4) + 1)
        const input: ManagerConfig.Input = {
          minWorkersCount: min,
          maxWorkersCount: max,
          admissionPolicy: a % 2 === 0 ? "queue" : "reject",
          queueSize: b % 4,
          queueTimeout: `${1 + (a % 4)} seconds`
        }
        config = yield* manager.setConfig(input)
        trace.push(`config(${min}/${max} ${input.admissionPolicy} q${input.queueSize})`)
      } else if (op < 69) {
        if (running) {
          // Sometimes bytes arrive just before the stop, with no chance to be read first.
          const client = pick(clients, a)
          if (client !== undefined && b % 2 === 0 && !client.ended && !(yield* client.memory.isClosed)) {
            const message = `c${client.id}m${client.sent.length}`
            client.sent.push(message)
            yield* client.memory.send(message)
          }
          yield* manager.stop
          running = false
          trace.push("stop")
        } else {
          yield* manager.start
          running = true
          trace.push("start")
        }
      } else if (op < 80) {
        const client = pick(
          clients.filter((c) => c.outcome === "pending"),
          a
        )
        if (client !== undefined) {
          // Not awaited: an interruption that cannot land leaves the put pending, which the check below catches.
          client.fiber!.interruptUnsafe()
          trace.push(`interrupt(c${client.id})`)
        }
      } else {
        const millis = a * 3
        yield* TestClock.adjust(millis)
        trace.push(`clock(${millis})`)
      }
      yield* settle
      const stats = yield* check
      assert.strictEqual(stats.running, running, where())
      if (running) assert.isAtLeast(stats.workers, config.minWorkersCount, `workers below min ${where()}`)
      else assert.strictEqual(stats.workers, 0, `workers left after stop ${where()}`)
      for (const client of clients) {
        if (client.outcome !== "pending") continue
        const interrupted = trace.includes(`interrupt(c${client.id})`)
        assert.isFalse(interrupted, `an interrupted put is still pending: c${client.id} ${where()}`)
      }
    }
    // A graceful stop handles every byte that arrived before it, and ends every waiting put.
    yield* manager.stop
    yield* settle
    const stats = yield* check
    assert.strictEqual(stats.busy, 0)
    assert.strictEqual(stats.workers, 0)
    const served = new Set(seen)
    for (const client of clients) {
      assert.notStrictEqual(client.outcome, "pending", `c${client.id} still pending after stop`)
      if (client.outcome === "admitted") {
        // Every connection is closed by now: take all the replies it got.
        let replies = ""
        while (true) {
          const reply = yield* soon(Effect.exit(client.memory.receiveText), "a reply or the end of the connection")
          if (Exit.isFailure(reply)) break
          replies += reply.value
        }
        for (const message of client.sent) {
          assert.isTrue(served.has(message), `${message} lost ${where()}`)
          assert.include(replies, `OK:${message}`, `${message} not answered ${where()}`)
        }
      } else {
        for (const message of client.sent)
          assert.isFalse(served.has(message), `${message} served after a failed put ${where()}`)
        assert.isFalse(yield* client.memory.isClosed, `c${client.id}: closed by the pool after a failed put ${where()}`)
      }
    }
    assert.strictEqual(seen.length, served.size, "a message was served twice")
    assert.strictEqual(stats.accepted, clients.filter((c) => c.outcome === "admitted").length)
  })

describe("PoolManager model", () => {
  it.effect.prop(
    "random command sequences keep every invariant",
    { steps: commands },
    ({ steps }) => Effect.scoped(model(steps)),
    { timeout: 60_000, arbitrary: { runs: 40, size: 250, seed: Number(process.env.POOL_MODEL_SEED ?? 12) } }
  )
})
