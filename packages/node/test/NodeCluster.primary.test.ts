/**
 * The primary's side of `NodeCluster`, without forking: each cluster asks its
 * workers with request ids of its own (two clusters in one process do not
 * share a counter), a reply is only the message of its type and id (any
 * other message, of any shape, is passed over), and the primary's own series
 * come out of Effect's Prometheus formatter as the format wants them.
 */
import type { Worker } from "node:cluster"
import { EventEmitter } from "node:events"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Scrapes from "../src/internal/clusterScrape.ts"
import * as ClusterStatus from "../src/internal/clusterStatus.ts"
import * as PrimaryMetrics from "../src/internal/primaryMetrics.ts"
import * as WorkerRequest from "../src/internal/workerRequest.ts"

/** A worker that answers every request at once, and records the ids it was asked with. */
const fakeWorker = (reply: (request: { type: string; id: number }) => object) => {
  const emitter = new EventEmitter()
  const ids: Array<number> = []
  const worker = Object.assign(emitter, {
    isConnected: () => true,
    send: (request: { type: string; id: number }, _handle: unknown, callback: (error: Error | null) => void) => {
      ids.push(request.id)
      callback(null)
      queueMicrotask(() => emitter.emit("message", reply(request)))
      return true
    }
  }) as unknown as Worker
  return { worker, ids }
}

const scrapeReply = (request: { id: number }) => ({
  type: "pool-manager:scrape-reply",
  id: request.id,
  metrics: "",
  running: true
})

describe("NodeCluster primary", () => {
  it.effect("each cluster's scrapes number their requests from 0, independently", () =>
    Effect.gen(function* () {
      const one = fakeWorker(scrapeReply)
      const two = fakeWorker(scrapeReply)
      const askOne = Scrapes.makeAsk()
      const askTwo = Scrapes.makeAsk()
      assert.isTrue(Option.isSome(yield* askOne(one.worker, 1)))
      assert.isTrue(Option.isSome(yield* askOne(one.worker, 1)))
      assert.isTrue(Option.isSome(yield* askTwo(two.worker, 1)))
      assert.deepStrictEqual(one.ids, [0, 1])
      assert.deepStrictEqual(two.ids, [0])
    })
  )

  it.effect("each cluster's status requests number theirs from 0, independently", () =>
    Effect.gen(function* () {
      const statusReply = (request: { id: number }) => ({
        type: "pool-manager:status-reply",
        id: request.id,
        snapshot: undefined
      })
      const one = fakeWorker(statusReply)
      const two = fakeWorker(statusReply)
      const collectOne = ClusterStatus.makeCollect()
      const collectTwo = ClusterStatus.makeCollect()
      yield* collectOne([[1, one.worker]], 1)
      yield* collectOne([[1, one.worker]], 1)
      yield* collectTwo([[1, two.worker]], 1)
      assert.deepStrictEqual(one.ids, [0, 1])
      assert.deepStrictEqual(two.ids, [0])
    })
  )

  it("the primary's series are formatted by Effect, one family at a time, read at each scrape", () => {
    const restarts = new Map([[2, 3]])
    const format = PrimaryMetrics.make({ processes: 2, restarts: (number) => restarts.get(number) ?? 0 })
    assert.strictEqual(
      format([1]),
      [
        "# HELP pool_processes Server processes configured (--processes)",
        "# TYPE pool_processes gauge",
        "pool_processes 2",
        "# HELP pool_process_up 1 if the process answered this scrape",
        "# TYPE pool_process_up gauge",
        'pool_process_up{process="1"} 1',
        'pool_process_up{process="2"} 0',
        "# HELP pool_process_restarts_total Processes replaced after they exited, by process number",
        "# TYPE pool_process_restarts_total counter",
        'pool_process_restarts_total{process="1"} 0',
        'pool_process_restarts_total{process="2"} 3',
        ""
      ].join("\n")
    )
    restarts.set(1, 1)
    const next = format([1, 2])
    assert.include(next, 'pool_process_up{process="2"} 1')
    assert.include(next, 'pool_process_restarts_total{process="1"} 1')
    // Two clusters' series live in registries of their own.
    assert.include(PrimaryMetrics.make({ processes: 1, restarts: () => 0 })([]), "pool_processes 1")
    assert.include(format([]), "pool_processes 2")
  })

  it.effect(
    "a request gets none from a worker that is gone, that cannot be sent to, or that does not answer in 2 s",
    () =>
      Effect.gen(function* () {
        const ids: WorkerRequest.RequestIds = { next: 0 }
        const ask = (worker: Worker) =>
          WorkerRequest.request(worker, ids, "test:request", "test:reply", (reply) => Option.some(reply.id))
        const worker = (connected: boolean, send: (request: { id: number }, emit: (reply: object) => void) => void) => {
          const emitter = new EventEmitter()
          return Object.assign(emitter, {
            isConnected: () => connected,
            send: (request: { id: number }, _handle: unknown, callback: (error: Error | null) => void) => {
              send(request, (reply) => queueMicrotask(() => emitter.emit("message", reply)))
              callback(null)
              return true
            }
          }) as unknown as Worker & EventEmitter
        }
        // Answers the request it was sent: its id comes back.
        const answering = worker(true, (request, emit) => emit({ type: "test:reply", id: request.id }))
        assert.deepStrictEqual(yield* ask(answering), Option.some(0))
        assert.strictEqual(answering.listenerCount("message"), 0, "the reply's listener is removed")

        const gone = worker(false, () => assert.fail("nothing is sent to a worker that is gone"))
        assert.deepStrictEqual(yield* ask(gone), Option.none())
        assert.strictEqual(gone.listenerCount("message"), 0)

        const failing = Object.assign(
          worker(true, () => {}),
          {
            send: (_request: unknown, _handle: unknown, callback: (error: Error | null) => void) => {
              callback(new Error("channel closed"))
              return false
            }
          }
        )
        assert.deepStrictEqual(yield* ask(failing), Option.none())
        assert.strictEqual(failing.listenerCount("message"), 0)

        // Replies of another type or to another request are not the answer: none at the bound, not before.
        const wrong = worker(true, (request, emit) => {
          emit({ type: "test:reply", id: request.id + 100 })
          emit({ type: "test:other", id: request.id })
        })
        const waiting = yield* Effect.forkChild(ask(wrong))
        yield* TestClock.adjust("1999 millis")
        // Nor is a message of another shape: a worker's own code may send anything, null included.
        for (const message of [null, "test:reply", 0]) assert.doesNotThrow(() => wrong.emit("message", message))
        assert.isUndefined(waiting.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        assert.deepStrictEqual(yield* Fiber.join(waiting), Option.none())
        assert.strictEqual(wrong.listenerCount("message"), 0, "the listener is removed at the bound")
        assert.strictEqual(ids.next, 4, "one id per request")
      })
  )
})
