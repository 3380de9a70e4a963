import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { TestClock } from "effect/testing"
import { Framing, PoolManager } from "../src/index.ts"
import { collecting, type Logged } from "./utils/framing.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"

const decoder = new TextDecoder()

describe("PoolManager.withState", () => {
  it.effect("gives each connection its own state, made when a worker takes it and released when it ends", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      let connections = 0
      const manager = yield* PoolManager.make(
        { framing: Framing.lines() },
        PoolManager.withState(
          () =>
            Effect.acquireRelease(
              Effect.sync(() => {
                const id = ++connections
                events.push(`init ${id}`)
                return { id, db: 0 }
              }),
              (state) => Effect.sync(() => events.push(`release ${state.id}`))
            ),
          (conn, body, _len, state) => {
            const command = decoder.decode(body)
            if (command.startsWith("SELECT ")) state.db = Number(command.slice(7))
            return Effect.orDie(conn.write(`${state.id}:${state.db};`))
          }
        )
      )
      yield* manager.start
      const one = yield* connect(manager)
      const two = yield* connect(manager)
      yield* settle
      assert.deepStrictEqual(events, ["init 1", "init 2"])
      yield* one.send("SELECT 3\nGET\n")
      assert.strictEqual(yield* nextReply(one), "1:3;1:3;")
      yield* two.send("GET\n")
      assert.strictEqual(yield* nextReply(two), "2:0;")
      yield* one.end
      yield* serverClosed(one)
      yield* settle
      assert.deepStrictEqual(events, ["init 1", "init 2", "release 1"])
      yield* manager.stop
      assert.deepStrictEqual(events, ["init 1", "init 2", "release 1", "release 2"])
    })
  )

  it.effect("passes the state to a syncCallback too", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make(
        { framing: Framing.lines() },
        PoolManager.withState(() => Effect.succeed({ count: 0 }))(
          PoolManager.syncCallback((conn, _body, _len, state) => {
            conn.writeNow(`${++state.count};`)
          })
        )
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("a\nb\n")
      assert.strictEqual(yield* nextReply(client), "1;2;")
      yield* client.send("c\n")
      assert.strictEqual(yield* nextReply(client), "3;")
    })
  )

  it.effect("an init that fails is logged, counted as a callback failure, and closes that connection only", () =>
    Effect.gen(function* () {
      const logged: Array<Logged> = []
      let attempts = 0
      const manager = yield* PoolManager.make(
        { maxWorkersCount: 1 },
        PoolManager.withState(
          () => (++attempts === 1 ? Effect.fail("no session for you") : Effect.succeed("session")),
          (conn, _body, _len, state) => Effect.orDie(conn.write(state))
        )
      ).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)])))
      yield* manager.start
      const refused = yield* connect(manager, { remoteAddress: "first:1" })
      yield* serverClosed(refused)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(logged.length, 1)
      assert.strictEqual(logged[0]!.annotations.remoteAddress, "first:1")
      // The worker serves the next connection.
      const served = yield* connect(manager)
      yield* served.send("hi")
      assert.strictEqual(yield* nextReply(served), "session")
      assert.strictEqual((yield* manager.stats).spawned, 1)
    })
  )

  it.effect(
    "a state whose finalizer dies is logged; its connection counts as closed by its peer, not cut by a drain",
    () =>
      Effect.gen(function* () {
        const logged: Array<Logged> = []
        const manager = yield* PoolManager.make(
          { maxWorkersCount: 1 },
          PoolManager.withState(
            () => Effect.addFinalizer(() => Effect.die(new Error("the state's finalizer died"))),
            (conn) => Effect.orDie(conn.write("OK"))
          )
        ).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)])))
        yield* manager.start
        const client = yield* connect(manager, { remoteAddress: "first:1" })
        yield* client.send("hi")
        assert.strictEqual(yield* nextReply(client), "OK")
        yield* client.end
        yield* serverClosed(client)
        yield* settle
        const stats = yield* manager.stats
        assert.deepStrictEqual(
          { closedByPeer: stats.closedByPeer, interruptedByDrain: stats.interruptedByDrain, busy: stats.busy },
          { closedByPeer: 1, interruptedByDrain: 0, busy: 0 }
        )
        assert.deepStrictEqual(
          logged.map((line) => [
            line.message.startsWith("connection state finalizer failed"),
            line.annotations.remoteAddress
          ]),
          [[true, "first:1"]]
        )
        // The worker serves the next connection.
        const next = yield* connect(manager)
        yield* next.send("hi")
        assert.strictEqual(yield* nextReply(next), "OK")
        assert.strictEqual((yield* manager.stats).spawned, 1)
      })
  )
})

describe("Connection.read inside a callback", () => {
  it.effect("fails with a Timeout ConnectionError once clientsDeadline passes without bytes", () =>
    Effect.gen(function* () {
      const outcomes: Array<string> = []
      const manager = yield* PoolManager.make({ clientsDeadline: "2 seconds" }, (conn) =>
        conn.read.pipe(
          Effect.map((bytes) => outcomes.push(`read ${decoder.decode(bytes)}`)),
          Effect.catchTag("ConnectionError", (error) => Effect.sync(() => outcomes.push(error.reason))),
          Effect.andThen(Effect.ignore(conn.write("done")))
        )
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("first")
      yield* settle
      yield* client.send("more")
      assert.strictEqual(yield* nextReply(client), "done")
      assert.deepStrictEqual(outcomes, ["read more"])
      yield* client.send("again")
      yield* TestClock.adjust("1999 millis")
      assert.deepStrictEqual(outcomes, ["read more"])
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* nextReply(client), "done")
      assert.deepStrictEqual(outcomes, ["read more", "Timeout"])
    })
  )
})
