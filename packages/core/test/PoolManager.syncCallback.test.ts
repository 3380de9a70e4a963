import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, PoolManager } from "../src/index.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"

const decoder = new TextDecoder()

/** A started manager whose synchronous callback answers `OK:<body>`, throws on `boom` and hangs up after `bye`. */
const startedSync = (config: ManagerConfig.Input, seen: Array<string> = []) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(
      config,
      PoolManager.syncCallback((conn, body, len) => {
        const text = decoder.decode(body.subarray(0, len))
        if (text === "boom") throw new Error("boom")
        seen.push(text)
        conn.writeNow(`OK:${text}`)
        if (text === "bye") conn.closeNow()
      })
    )
    yield* manager.start
    return manager
  })

describe("PoolManager.syncCallback", () => {
  it.effect("answers every message on a connection, first and later ones, and counts them", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const manager = yield* startedSync({ maxWorkersCount: 2 }, seen)
      // A message already there when the connection is put, then messages that arrive later.
      const early = yield* connect(manager)
      yield* early.send("one")
      assert.strictEqual(yield* nextReply(early), "OK:one")
      for (const text of ["two", "three"]) {
        // Once the loop has answered and waits again, a later message takes
        // the transport's event path (the callback runs in the event, not in
        // a resumed fiber); without the settle the client would send first.
        yield* settle
        yield* early.send(text)
        assert.strictEqual(yield* nextReply(early), `OK:${text}`)
      }
      assert.deepStrictEqual(seen, ["one", "two", "three"])
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 3)
      assert.strictEqual(stats.bytesRead, 11)
      assert.strictEqual(stats.busy, 1)
    })
  )

  it.effect("keeps the deadline, counted from the last reply", () =>
    Effect.gen(function* () {
      const manager = yield* startedSync({ clientsDeadline: "1 second" })
      const client = yield* connect(manager)
      yield* TestClock.adjust("900 millis")
      yield* client.send("ping")
      assert.strictEqual(yield* nextReply(client), "OK:ping")
      yield* TestClock.adjust("900 millis")
      assert.isFalse(yield* client.isClosed)
      yield* TestClock.adjust("100 millis")
      yield* serverClosed(client)
      assert.strictEqual((yield* manager.stats).closedByDeadline, 1)
    })
  )

  it.effect("closes after maxMessagesPerConnection replies", () =>
    Effect.gen(function* () {
      const manager = yield* startedSync({ maxMessagesPerConnection: 2 })
      const client = yield* connect(manager)
      yield* client.send("a")
      assert.strictEqual(yield* nextReply(client), "OK:a")
      yield* client.send("b")
      assert.strictEqual(yield* nextReply(client), "OK:b")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByMessageLimit, 1)
      assert.strictEqual(stats.busy, 0)
    })
  )

  it.effect("a callback that throws closes only its connection, is counted, and the worker serves the next one", () =>
    Effect.gen(function* () {
      const manager = yield* startedSync({ maxWorkersCount: 1 })
      const client = yield* connect(manager)
      yield* client.send("fine")
      assert.strictEqual(yield* nextReply(client), "OK:fine")
      yield* client.send("boom")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.busy, 0)
      const next = yield* connect(manager)
      yield* next.send("again")
      assert.strictEqual(yield* nextReply(next), "OK:again")
    })
  )

  it.effect("stop answers what already arrived, then closes idle connections", () =>
    Effect.gen(function* () {
      const manager = yield* startedSync({})
      const client = yield* connect(manager)
      yield* client.send("before")
      assert.strictEqual(yield* nextReply(client), "OK:before")
      yield* client.send("late")
      yield* manager.stop
      assert.strictEqual(yield* nextReply(client), "OK:late")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.isFalse(stats.running)
      assert.strictEqual(stats.messages, 2)
    })
  )

  it.effect("closeNow sends what was written, then closes, and the worker is free again", () =>
    Effect.gen(function* () {
      const manager = yield* startedSync({ maxWorkersCount: 1 })
      const client = yield* connect(manager)
      yield* client.send("bye")
      assert.strictEqual(yield* nextReply(client), "OK:bye")
      yield* serverClosed(client)
      // The only worker served the closed connection: once the serve loop has
      // seen the close, a new one gets it.
      yield* settle
      const next = yield* connect(manager)
      yield* next.send("again")
      assert.strictEqual(yield* nextReply(next), "OK:again")
    })
  )
})
