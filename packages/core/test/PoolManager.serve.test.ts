import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger } from "effect"
import { TestClock } from "effect/testing"
import { Connection, Framing, type ManagerConfig, type PoolError, PoolManager } from "../src/index.ts"
import { fakeTransport } from "./utils/fakeTransport.ts"
import { type LogLine, logging } from "./utils/logs.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, serverClosed, soon } from "./utils/soon.ts"

// How the serve loop closes a connection: which transport call, when, and
// what it logs for each reason.

const startedLogging = <E>(
  config: ManagerConfig.Input,
  callback: PoolManager.Callback<E> | PoolManager.SyncCallback,
  logged: Array<LogLine>
) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, callback).pipe(logging(logged))
    yield* manager.start
    return manager
  })

const answer: PoolManager.Callback<PoolError.ConnectionError> = (conn, body) =>
  conn.write(`OK:${new TextDecoder().decode(body)}`)

const warnings = (logged: ReadonlyArray<LogLine>) => logged.filter((entry) => entry.level === "Warn")

/** The first of the transport's close and abort calls. */
const firstEnd = (events: ReadonlyArray<string>) => events.find((event) => event === "close" || event === "abort")

describe("serve: closing the transport", () => {
  it.effect("a write timeout drops the connection with abort (the peer reads nothing), counted as a deadline", () =>
    Effect.gen(function* () {
      const fake = fakeTransport({ writesTimeOut: true })
      const manager = yield* startedLogging({}, answer, [])
      fake.arrive("ping")
      yield* manager.put(fake.connection)
      yield* settle
      assert.strictEqual(firstEnd(fake.events), "abort", `events: ${fake.events.join(", ")}`)
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByDeadline, 1)
      assert.strictEqual(stats.callbackFailures, 0)
    })
  )

  it.effect("every other close sends what is queued first (close, never abort)", () =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      const manager = yield* startedLogging({ maxMessagesPerConnection: 1 }, answer, [])
      fake.arrive("ping")
      yield* manager.put(fake.connection)
      yield* settle
      assert.deepStrictEqual(fake.writes, ["OK:ping"])
      assert.strictEqual(firstEnd(fake.events), "close")
      assert.notInclude(fake.events, "abort")
      assert.strictEqual((yield* manager.stats).closedByMessageLimit, 1)
    })
  )

  // The state's finalizers run when serving ends; the client must not wait for them to be closed.
  const slowRelease = <E>(handler: PoolManager.Callback<E, never, void>, finished: { done: boolean }) =>
    PoolManager.withState(() =>
      Effect.addFinalizer(() =>
        Effect.sleep("10 seconds").pipe(Effect.andThen(Effect.sync(() => (finished.done = true))))
      )
    )(handler)

  it.effect("a deadline closes the client at once, before a slow state finalizer ends", () =>
    Effect.gen(function* () {
      const finished = { done: false }
      const manager = yield* PoolManager.make({ clientsDeadline: "1 second" }, slowRelease(answer, finished))
      yield* manager.start
      const client = yield* connect(manager)
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.isTrue(yield* client.isClosed, "the client is closed when the deadline passes")
      assert.isFalse(finished.done)
      assert.strictEqual((yield* manager.stats).closedByDeadline, 1)
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(finished.done)
    })
  )

  it.effect("a failed callback closes the client at once, before a slow state finalizer ends", () =>
    Effect.gen(function* () {
      const finished = { done: false }
      const failing: PoolManager.Callback<Error> = () => Effect.fail(new Error("no"))
      const manager = yield* PoolManager.make({}, slowRelease(failing, finished)).pipe(logging([]))
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* settle
      assert.isTrue(yield* client.isClosed, "the client is closed when its callback failed")
      assert.isFalse(finished.done)
      assert.strictEqual((yield* manager.stats).callbackFailures, 1)
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(finished.done)
    })
  )
})

describe("serve: what a close logs", () => {
  it.effect("a message over maxMessageBytes: a warning naming the peer and the limit", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      const manager = yield* startedLogging({ maxMessageBytes: 4 }, answer, logged)
      const client = yield* connect(manager, { remoteAddress: "10.0.0.1:5" })
      yield* client.send("12345")
      yield* serverClosed(client)
      yield* settle
      assert.deepStrictEqual(
        warnings(logged).map((entry) => entry.message),
        ["closing connection: message larger than maxMessageBytes"]
      )
      const { annotations } = warnings(logged)[0]!
      assert.strictEqual(annotations.remoteAddress, "10.0.0.1:5")
      assert.strictEqual(annotations.maxMessageBytes, 4)
      assert.strictEqual((yield* manager.stats).closedBySize, 1)
    })
  )

  it.effect("a frame too large: its own warning, with why and the framing", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      const framing = Framing.lines({ maxLength: 3 })
      const manager = yield* startedLogging({ framing }, answer, logged)
      const client = yield* connect(manager, { remoteAddress: "10.0.0.2:6" })
      yield* client.send("abcd\n")
      yield* serverClosed(client)
      yield* settle
      const [warning, ...others] = warnings(logged)
      assert.strictEqual(others.length, 0)
      assert.strictEqual(warning?.message, "closing connection: frame too large")
      assert.strictEqual(warning?.annotations.remoteAddress, "10.0.0.2:6")
      assert.strictEqual(warning?.annotations.framing, Framing.format(framing))
      assert.include(String(warning?.annotations.reason), "3 bytes")
      assert.strictEqual((yield* manager.stats).closedBySize, 1)
    })
  )

  it.effect("bad framing input (a decoder whose make throws): its own warning, with why", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      const framing = Framing.custom("broken", () => {
        throw new Error("cannot start")
      })
      const manager = yield* startedLogging({ framing }, answer, logged)
      const client = yield* connect(manager)
      yield* client.send("x\n")
      yield* serverClosed(client)
      yield* settle
      const [warning, ...others] = warnings(logged)
      assert.strictEqual(others.length, 0)
      assert.strictEqual(warning?.message, "closing connection: bad input to its framing")
      assert.strictEqual(warning?.annotations.reason, "the decoder's make threw: cannot start")
      assert.strictEqual(warning?.annotations.framing, Framing.format(framing))
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByFraming, 1)
      assert.strictEqual(stats.messages, 0)
    })
  )

  it.effect("an ordinary close warns of nothing; with debug it logs the peer and the reason", () =>
    Effect.gen(function* () {
      for (const debug of [false, true]) {
        const logged: Array<LogLine> = []
        const manager = yield* startedLogging({ clientsDeadline: "1 second", debug }, answer, logged)
        const client = yield* connect(manager, { remoteAddress: "10.0.0.3:7" })
        yield* settle
        yield* TestClock.adjust("1 second")
        yield* serverClosed(client)
        yield* settle
        assert.deepStrictEqual(warnings(logged), [])
        const closes = logged.filter((entry) => entry.message === "connection closed")
        if (!debug) {
          assert.deepStrictEqual(closes, [])
        } else {
          assert.strictEqual(closes.length, 1)
          assert.strictEqual(closes[0]!.level, "Debug")
          assert.strictEqual(closes[0]!.annotations.remoteAddress, "10.0.0.3:7")
          assert.strictEqual(closes[0]!.annotations.reason, "deadline")
        }
        yield* manager.stop
      }
    })
  )

  it.effect("a failed callback: a warning with the peer, counted once", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      const failing: PoolManager.Callback<Error> = () => Effect.fail(new Error("no"))
      const manager = yield* startedLogging({}, failing, logged)
      const client = yield* connect(manager, { remoteAddress: "10.0.0.4:8" })
      yield* client.send("x")
      yield* serverClosed(client)
      yield* settle
      const [warning, ...others] = warnings(logged)
      assert.strictEqual(others.length, 0)
      assert.strictEqual(warning?.message, "callback failed; closing its connection")
      assert.strictEqual(warning?.annotations.remoteAddress, "10.0.0.4:8")
      assert.strictEqual((yield* manager.stats).callbackFailures, 1)
    })
  )
})

describe("serve: which failures count as the callback's", () => {
  it.effect("a close whose own warning fails (a logger that throws) is not counted as a callback failure", () =>
    Effect.gen(function* () {
      const throwing = Logger.make(({ message }) => {
        if (String(message).includes("larger than maxMessageBytes")) throw new Error("logger down")
      })
      const manager = yield* PoolManager.make({ maxMessageBytes: 4 }, answer).pipe(
        Effect.provideService(Logger.CurrentLoggers, new Set([throwing]))
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("12345")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedBySize, 1)
      assert.strictEqual(stats.callbackFailures, 0)
      assert.strictEqual(stats.busy, 0)
    })
  )

  it.effect("a ConnectionError of another connection, with this peer still there, is a callback failure", () =>
    Effect.gen(function* () {
      // As when the callback's backend connection failed.
      const failing: PoolManager.Callback<PoolError.ConnectionError> = () =>
        Effect.fail(Connection.failure("Closed", "backend:1"))
      const manager = yield* startedLogging({}, failing, [])
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.closedByPeer, 0)
    })
  )

  it.effect("an error that is not a ConnectionError is a callback failure even when the peer has gone", () =>
    Effect.gen(function* () {
      const failing: PoolManager.Callback<Error> = () => Effect.fail(new Error("bad request"))
      const manager = yield* startedLogging({}, failing, [])
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* client.end
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.closedByPeer, 0)
    })
  )

  it.effect("a write that fails because the peer went away is the peer closing", () =>
    Effect.gen(function* () {
      const manager = yield* startedLogging({}, answer, [])
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* client.reset
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByPeer, 1)
      assert.strictEqual(stats.callbackFailures, 0)
    })
  )

  it.effect("a callback whose effect interrupts itself is a callback failure, not a drain interruption", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      // As when the callback joins a fiber that was interrupted.
      const interrupted: PoolManager.Callback = (conn) =>
        Effect.andThen(Effect.orDie(conn.write("partial")), Effect.interrupt)
      const manager = yield* startedLogging({}, interrupted, logged)
      const client = yield* connect(manager)
      yield* client.send("x")
      assert.strictEqual(yield* nextReply(client), "partial", "what it wrote is flushed, not dropped")
      yield* serverClosed(client)
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.interruptedByDrain, 0)
      assert.include(
        warnings(logged).map((entry) => entry.message),
        "callback failed; closing its connection"
      )
    })
  )

  it.effect("a callback cut short by the drain timeout is counted as interrupted, not as failed", () =>
    Effect.gen(function* () {
      const logged: Array<LogLine> = []
      const manager = yield* startedLogging({ drainTimeout: "1 second" }, () => Effect.never, logged)
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* settle
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* TestClock.adjust("1 second")
      yield* soon(Fiber.join(stopping), "stop to complete")
      const stats = yield* manager.stats
      assert.strictEqual(stats.interruptedByDrain, 1)
      assert.strictEqual(stats.callbackFailures, 0)
      assert.notInclude(
        logged.map((entry) => entry.message),
        "callback failed; closing its connection"
      )
    })
  )
})
