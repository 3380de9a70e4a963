/**
 * Effect callbacks whose effect completes at once — a success, or a write of
 * the connection's that the transport takes whole — are run in the
 * transport's event, without resuming the connection's fiber (`runNow` in
 * `internal/serve.ts`). What a client and the stats see stays as it was: the
 * same replies in frame order, each message counted and timed, a frame whose
 * effect suspends holding back the frames after it, and a write the transport
 * cannot take whole waiting for the peer to read before the next frame.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { type Connection, Framing, type ManagerConfig, MemoryConnection, PoolManager } from "../src/index.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, repliesOf, serverClosed, soon } from "./utils/soon.ts"

const decoder = new TextDecoder()

// By a frame's first letter: `w` writes `<frame>;` (at once), `v` returns
// Effect.void, `s` Effect.succeed, `z` sleeps a second and then writes, `f` fails.
const callback: PoolManager.Callback<Error> = (conn, body) => {
  const frame = decoder.decode(body)
  switch (frame[0]) {
    case "v":
      return Effect.void
    case "s":
      return Effect.succeed(frame)
    case "z":
      return Effect.andThen(Effect.sleep(Duration.seconds(1)), conn.write(`${frame};`))
    case "f":
      return Effect.fail(new Error(`refused ${frame}`))
    default:
      return conn.write(`${frame};`)
  }
}

const callbackCount = Effect.map(Metric.snapshot, (snapshots) => {
  const found = snapshots.find((s) => s.id === "pool_callback_duration_seconds")
  return (found?.state as Metric.HistogramState | undefined)?.count ?? 0
})

const lines = (...frames: ReadonlyArray<string>) => frames.map((frame) => `${frame}\n`).join("")

const startedWith = (config: ManagerConfig.Input = {}) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(
      { framing: Framing.lines(), clientsDeadline: "1 hour", ...config },
      callback
    )
    yield* manager.start
    return manager
  })

// A manager whose callback records the fiber each message's effect runs in,
// and answers `same;` when that is the connection's fiber (the state: the id
// of the fiber `init` runs in), else the frame.
const recordingFibers = (fibers: Array<number>) =>
  PoolManager.make(
    { framing: Framing.lines() },
    PoolManager.withState(
      () => Effect.fiberId,
      (conn, body, _len, connectionFiber) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.fiberId
          fibers.push(fiber)
          yield* conn.write(fiber === connectionFiber ? "same;" : `${decoder.decode(body)};`)
        })
    )
  )

// A `Connection` of the user's own making over `base`'s transport: not one `Connection.make` built.
const ownConnection = (base: Connection.Connection): Connection.Connection => ({
  remoteAddress: base.remoteAddress,
  read: base.read,
  write: base.write,
  close: base.close,
  writeNow: base.writeNow,
  closeNow: base.closeNow,
  transport: base.transport
})

describe("PoolManager effects that complete at once", () => {
  it.effect("answers a pipeline of writes and successes in frame order, counting and timing each message", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith()
      const client = yield* connect(manager)
      const before = yield* callbackCount
      yield* client.send(lines("w1", "v2", "w3", "s4", "w5"))
      assert.strictEqual(yield* nextReply(client), "w1;w3;w5;")
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 5)
      assert.strictEqual(stats.bytesRead, 10)
      assert.strictEqual((yield* callbackCount) - before, 5, "each message's callback timed")
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a frame whose effect suspends holds back the frames after it until it completes", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith()
      const client = yield* connect(manager)
      yield* client.send(lines("w1", "z2", "w3", "v4", "w5"))
      assert.strictEqual(yield* nextReply(client), "w1;")
      yield* settle
      assert.strictEqual((yield* manager.stats).messages, 2, "w3 waits for z2")
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* repliesOf(client, "z2;w3;w5;".length), "z2;w3;w5;")
      assert.strictEqual((yield* manager.stats).messages, 5)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a write the transport cannot take whole waits for the peer to read before the next frame", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith()
      // Room for less than one reply: every write leaves the transport full.
      const client = yield* connect(manager, { writeBufferBytes: 2 })
      yield* client.send(lines("w1", "w2", "w3"))
      yield* settle
      assert.strictEqual((yield* manager.stats).messages, 1, "w2 waits until w1's reply is read")
      assert.strictEqual(yield* nextReply(client), "w1;")
      assert.strictEqual(yield* repliesOf(client, "w2;w3;".length), "w2;w3;")
      assert.strictEqual((yield* manager.stats).messages, 3)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a write's wait for the peer to read is the connection fiber's own: no fiber is forked for it", () => {
    // Counts every fiber started in the test, the pool's included (they run in its context).
    let started = 0
    const counting: Metric.FiberRuntimeMetricsService = {
      recordFiberStart: () => {
        started++
      },
      recordFiberEnd: () => {}
    }
    return Effect.gen(function* () {
      // No deadline: a finite one would fork a timer fiber per wait of the memory transport.
      const manager = yield* PoolManager.make(
        { framing: Framing.lines(), clientsDeadline: Duration.infinity },
        (conn, body) => {
          const frame = decoder.decode(body)
          return frame[0] === "w" ? conn.write(`${frame};`) : Effect.andThen(Effect.void, conn.write(`${frame};`))
        }
      )
      yield* manager.start
      // Room for less than one reply: every write leaves the transport full.
      const client = yield* connect(manager, { writeBufferBytes: 2 })
      // Each frame in a chunk of its own, sent once the last reply came, so
      // that each reaches the callback in the transport's event; its reply is
      // read once the server is done with that event, so that the write finds
      // the transport full and waits. The same steps for each frame, so they
      // start the same fibers but for what the pool forks.
      const fibersOfStep = (frame: string) =>
        Effect.gen(function* () {
          const before = started
          yield* client.send(lines(frame))
          yield* settle
          assert.strictEqual(yield* client.receiveText, `${frame};`)
          yield* settle
          return started - before
        })
      const g1 = yield* fibersOfStep("g1")
      const w2 = yield* fibersOfStep("w2")
      const g3 = yield* fibersOfStep("g3")
      assert.strictEqual(g1, g3, "the same steps start the same fibers")
      // g's effect runs in a fiber of its own (and waits there); w2's write is
      // the connection's own, run in the event, and its wait is the connection fiber's.
      assert.strictEqual(w2, g3 - 1)
      assert.strictEqual((yield* manager.stats).messages, 3)
      yield* manager.stop
    }).pipe(Effect.scoped, Effect.provideService(Metric.FiberRuntimeMetrics, counting))
  })

  it.effect("a write the peer never reads times out as a write timeout, with the deadline", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith({ clientsDeadline: "2 seconds" })
      const client = yield* connect(manager, { writeBufferBytes: 2 })
      yield* client.send(lines("w1", "w2"))
      yield* settle
      yield* TestClock.adjust(Duration.seconds(2))
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 1, "w2 was never taken")
      assert.strictEqual(stats.closedByDeadline, 1, "a write timeout closes as a deadline")
      assert.strictEqual(stats.callbackFailures, 0)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a failure returned at once is the callback's failure: counted, and its connection closed", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith()
      const client = yield* connect(manager)
      yield* client.send(lines("w1", "f2", "w3"))
      assert.strictEqual(yield* nextReply(client), "w1;")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 2, "w3 is dropped with the close")
      assert.strictEqual(stats.callbackFailures, 1)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("the message limit closes the connection after its last message, in the event", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith({ maxMessagesPerConnection: 2 })
      const client = yield* connect(manager)
      yield* client.send(lines("w1", "w2", "w3"))
      assert.strictEqual(yield* nextReply(client), "w1;w2;")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 2)
      assert.strictEqual(stats.closedByMessageLimit, 1)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("the message limit counts a message whose effect suspended, then closes after the last", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith({ maxMessagesPerConnection: 2 })
      const client = yield* connect(manager)
      // z1 suspends, so z2 is served from the connection's fiber, and its end is the limit's.
      yield* client.send(lines("z1", "z2", "w3"))
      yield* settle
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* nextReply(client), "z1;")
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* nextReply(client), "z2;")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 2, "w3 is dropped with the close")
      assert.strictEqual(stats.closedByMessageLimit, 1)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("under the Go rule too: the limit closes after a message whose effect suspended", () =>
    Effect.gen(function* () {
      const manager = yield* PoolManager.make({ maxMessagesPerConnection: 1 }, (conn) =>
        Effect.andThen(Effect.sleep(Duration.seconds(1)), conn.write("OK"))
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("one")
      yield* settle
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* serverClosed(client)
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 1)
      assert.strictEqual(stats.closedByMessageLimit, 1)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a Connection of the user's own making is served as before, its effects run by the fiber", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith()
      const { client, connection: base } = yield* MemoryConnection.make()
      const own = ownConnection(base)
      yield* manager.put(own)
      yield* client.send(lines("w1", "v2", "w3"))
      assert.strictEqual(yield* repliesOf(client, "w1;w3;".length), "w1;w3;")
      assert.strictEqual((yield* manager.stats).messages, 3)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )
})

describe("PoolManager runs each message's effect in a fiber of its own", () => {
  it.effect("forked in the event, once per message, apart from the connection's fiber", () =>
    Effect.gen(function* () {
      const fibers: Array<number> = []
      const manager = yield* recordingFibers(fibers)
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send(lines("a", "b", "c"))
      assert.strictEqual(yield* nextReply(client), "a;b;c;", "all three answered in the chunk's event")
      assert.strictEqual(new Set(fibers).size, 3, "a fiber per message")
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("for a Connection of the user's own making too, none of whose effects is the pool's to run", () =>
    Effect.gen(function* () {
      const fibers: Array<number> = []
      const manager = yield* recordingFibers(fibers)
      yield* manager.start
      const { client, connection: base } = yield* MemoryConnection.make()
      const own = ownConnection(base)
      yield* manager.put(own)
      yield* client.send(lines("a", "b", "c"))
      assert.strictEqual(yield* repliesOf(client, "a;b;c;".length), "a;b;c;")
      assert.strictEqual(new Set(fibers).size, 3, "a fiber per message")
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("an effect that is already a success (Effect.void, Effect.succeed) is done without a fiber", () =>
    Effect.gen(function* () {
      const fibers: Array<number> = []
      const manager = yield* PoolManager.make({ framing: Framing.lines() }, (conn, body) => {
        const frame = decoder.decode(body)
        if (frame[0] === "v") return Effect.void
        if (frame[0] === "s") return Effect.succeed(frame)
        return Effect.gen(function* () {
          fibers.push(yield* Effect.fiberId)
          yield* conn.write(`${frame};`)
        })
      })
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send(lines("g1", "v2", "s3", "g4"))
      assert.strictEqual(yield* nextReply(client), "g1;g4;")
      // Fiber ids count every fiber made: none was made between g1's and g4's.
      assert.deepStrictEqual(fibers, [fibers[0], fibers[0]! + 1])
      assert.strictEqual((yield* manager.stats).messages, 4)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("a fiber the callback forks as its child ends with the message's effect; a detached one lives on", () =>
    Effect.gen(function* () {
      const forked: Array<Fiber.Fiber<never>> = []
      const manager = yield* PoolManager.make({}, (conn, body) =>
        Effect.gen(function* () {
          const fork = decoder.decode(body) === "child" ? Effect.forkChild : Effect.forkDetach
          forked.push(yield* fork(Effect.never))
          yield* conn.write("OK")
        })
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("child")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* client.send("detached")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* settle
      const [child, detached] = forked
      const exit = child?.pollUnsafe()
      assert.isTrue(exit !== undefined && Exit.hasInterrupts(exit), "the child was interrupted")
      assert.isUndefined(detached?.pollUnsafe(), "the detached fiber still runs")
      yield* Fiber.interrupt(detached!)
      yield* manager.stop
    }).pipe(Effect.scoped)
  )

  it.effect("stop's drain timeout interrupts an effect still running, whose finalizers run", () =>
    Effect.gen(function* () {
      let interrupted = false
      const manager = yield* PoolManager.make({ drainTimeout: "1 second" }, () =>
        Effect.onInterrupt(Effect.never, () =>
          Effect.sync(() => {
            interrupted = true
          })
        )
      )
      yield* manager.start
      const client = yield* connect(manager)
      yield* client.send("never answered")
      yield* settle
      assert.strictEqual((yield* manager.stats).messages, 1)
      const stopping = yield* Effect.forkChild(manager.stop)
      yield* settle
      assert.isFalse(interrupted, "the drain waits for it first")
      yield* TestClock.adjust(Duration.seconds(1))
      yield* soon(Fiber.join(stopping), "stop to complete")
      assert.isTrue(interrupted)
      assert.isTrue(yield* client.isClosed)
      const stats = yield* manager.stats
      assert.strictEqual(stats.interruptedByDrain, 1)
      assert.strictEqual(stats.callbackFailures, 0)
    }).pipe(Effect.scoped)
  )
})
