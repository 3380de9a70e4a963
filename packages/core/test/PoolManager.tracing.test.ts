import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Option, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, MemoryConnection, PoolManager } from "../src/index.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, serverClosed, soon } from "./utils/soon.ts"
import { recording } from "./utils/tracing.ts"

const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)

// Answers OK under a span of its own, as an application would.
const handle: PoolManager.Callback = (conn) => Effect.orDie(conn.write("OK")).pipe(Effect.withSpan("app.handle"))

const startedWith = <E = never>(
  config: ManagerConfig.Input,
  callback: PoolManager.Callback<E> | PoolManager.SyncCallback = handle
) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, callback)
    yield* manager.start
    return manager
  })

const seconds = (span: Tracer.NativeSpan) =>
  span.status._tag === "Ended" ? Number(span.status.endTime - span.status.startTime) / 1e9 : undefined

// Goes through every place a span could be made: a connection served with a
// message (sampled at 1), a put refused, a close.
const everySpanSite = (callback: PoolManager.Callback) =>
  Effect.gen(function* () {
    const manager = yield* startedWith({ messageSpanSampleRate: 1, maxWorkersCount: 1 }, callback)
    const client = yield* connect(manager)
    yield* client.send("x")
    yield* nextReply(client)
    yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection))
    yield* client.end
    yield* settle
  })

describe("PoolManager tracing", () => {
  it.effect("a connection's span covers put to close, with the callback's spans under it", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({})
      const client = yield* connect(manager, { remoteAddress: "10.0.0.7:4000" })
      yield* client.send("hello")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* TestClock.adjust("250 millis")
      yield* client.send("hi")
      assert.strictEqual(yield* nextReply(client), "OK")
      const [connection] = named("pool.connection")
      assert.isDefined(connection)
      assert.strictEqual(connection!.status._tag, "Started")
      yield* client.end
      yield* settle
      assert.strictEqual(named("pool.connection").length, 1)
      assert.strictEqual(connection!.status._tag, "Ended")
      assert.strictEqual(connection!.kind, "server")
      assert.strictEqual(seconds(connection!), 0.25)
      assert.deepStrictEqual(Object.fromEntries(connection!.attributes), {
        "pool.remote_address": "10.0.0.7:4000",
        "pool.worker_id": 1,
        "pool.messages": 2,
        "pool.bytes_read": 7,
        "pool.bytes_written": 4,
        "pool.close_reason": "peer closed"
      })
      // No message spans by default: the callback's spans nest in the connection's.
      assert.strictEqual(named("pool.message").length, 0)
      const handled = named("app.handle")
      assert.strictEqual(handled.length, 2)
      for (const span of handled) assert.strictEqual(parentOf(span), connection)
      assert.strictEqual(handled[0]!.traceId, connection!.traceId)
      assert.strictEqual(named("pool.put").length, 0)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("messageSpanSampleRate 1 gives every message a span between the connection's and the callback's", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1 })
      const client = yield* connect(manager)
      for (const text of ["one", "three"]) {
        yield* client.send(text)
        assert.strictEqual(yield* nextReply(client), "OK")
      }
      yield* settle
      const [connection] = named("pool.connection")
      const messages = named("pool.message")
      assert.strictEqual(messages.length, 2)
      assert.deepStrictEqual(
        messages.map((span) => span.attributes.get("pool.message.bytes")),
        [3, 5]
      )
      const handled = named("app.handle")
      assert.strictEqual(handled.length, 2)
      messages.forEach((message, i) => {
        assert.strictEqual(parentOf(message), connection)
        assert.strictEqual(message.status._tag, "Ended")
        assert.strictEqual(parentOf(handled[i]!), message)
      })
      // Turned off live: the next message has none.
      yield* manager.setConfig({ messageSpanSampleRate: 0 })
      yield* client.send("four")
      assert.strictEqual(yield* nextReply(client), "OK")
      assert.strictEqual(named("pool.message").length, 2)
      assert.strictEqual(parentOf(named("app.handle")[2]!), connection)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("a synchronous callback's message spans have the connection's span as parent", () => {
    const { tracer, named } = recording()
    const sync = PoolManager.syncCallback((conn) => {
      conn.writeNow("OK")
    })
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1, maxMessagesPerConnection: 2 }, sync)
      const client = yield* connect(manager)
      yield* client.send("a")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* client.send("b")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* serverClosed(client)
      yield* settle
      const [connection] = named("pool.connection")
      assert.strictEqual(named("pool.message").length, 2)
      for (const message of named("pool.message")) {
        assert.strictEqual(parentOf(message), connection)
        assert.strictEqual(message.status._tag, "Ended")
      }
      assert.strictEqual(connection!.attributes.get("pool.close_reason"), "message limit")
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("a failing callback ends its message span with the failure", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1 }, (() =>
        Effect.fail("no")) as unknown as PoolManager.Callback)
      const client = yield* connect(manager)
      yield* client.send("x")
      yield* serverClosed(client)
      yield* settle
      const [message] = named("pool.message")
      assert.isTrue(message!.status._tag === "Ended" && Exit.isFailure(message!.status.exit))
      assert.strictEqual(named("pool.connection")[0]!.attributes.get("pool.close_reason"), "callback failed")
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("queued and refused puts get a pool.put span with the reason and the time waited", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ maxWorkersCount: 1, admissionPolicy: "queue", queueTimeout: "1 second" })
      const first = yield* connect(manager)
      const queued = yield* Effect.forkChild(connect(manager))
      yield* settle
      yield* TestClock.adjust("400 millis")
      yield* first.end
      yield* settle
      const second = yield* soon(Fiber.await(queued), "the queued put to complete")
      assert.isTrue(Exit.isSuccess(second))
      const [admitted] = named("pool.put")
      assert.strictEqual(admitted!.attributes.get("pool.put.reason"), "queued")
      assert.strictEqual(admitted!.attributes.get("pool.put.waited_seconds"), 0.4)
      // It is part of the connection's span, which starts with the put.
      const connection = named("pool.connection")[1]!
      assert.strictEqual(parentOf(admitted!), connection)
      assert.strictEqual(connection.status.startTime, admitted!.status.startTime)

      // The pool is full again: the next put waits queueTimeout and is refused.
      const { connection: late } = yield* MemoryConnection.make({ remoteAddress: "10.0.0.9:1" })
      const refused = yield* Effect.forkChild(Effect.flip(manager.put(late)))
      yield* settle
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isSuccess(yield* soon(Fiber.await(refused), "the put to be refused")))
      const timedOut = named("pool.put")[1]!
      assert.deepStrictEqual(Object.fromEntries(timedOut.attributes), {
        "pool.remote_address": "10.0.0.9:1",
        "pool.put.reason": "queue timeout",
        "pool.put.waited_seconds": 1
      })
      assert.isTrue(timedOut.status._tag === "Ended" && Exit.isFailure(timedOut.status.exit))
      assert.isUndefined(parentOf(timedOut))
      assert.strictEqual(named("pool.connection").length, 2)

      // Both waits are in the queue-wait histogram.
      const snapshot = (yield* Metric.snapshot).find((s) => s.id === "pool_queue_wait_seconds")
      const histogram = snapshot!.state as Metric.HistogramState
      assert.strictEqual(histogram.count, 2)
      assert.closeTo(histogram.sum, 1.4, 1e-9)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer), Effect.provideService(Metric.MetricRegistry, new Map()))
  })

  it.effect("a put refused at once gets a pool.put span under the caller's span", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ maxWorkersCount: 1 })
      yield* connect(manager)
      const { connection } = yield* MemoryConnection.make()
      yield* Effect.flip(manager.put(connection)).pipe(Effect.withSpan("app.accept"))
      const [put] = named("pool.put")
      assert.strictEqual(put!.attributes.get("pool.put.reason"), "busy")
      assert.strictEqual(put!.attributes.get("pool.put.waited_seconds"), 0)
      assert.strictEqual(parentOf(put!), named("app.accept")[0])
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("the other refusals and a drained connection say why", () => {
    const { tracer, named } = recording()
    const reasons = () => named("pool.put").map((span) => span.attributes.get("pool.put.reason"))
    return Effect.gen(function* () {
      const manager = yield* startedWith(
        {
          maxWorkersCount: 1,
          admissionPolicy: "queue",
          queueTimeout: "10 seconds",
          maxConnectionsPerAddress: 2,
          drainTimeout: "1 second"
        },
        (conn) => Effect.orDie(conn.write("OK")).pipe(Effect.andThen(Effect.never))
      )
      const held = yield* connect(manager)
      yield* held.send("x")
      yield* nextReply(held)
      // A third connection from the same host: over maxConnectionsPerAddress with the waiting one.
      const waiting = yield* Effect.forkChild(connect(manager))
      yield* settle
      yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection))
      // Interrupted while it waits in the queue.
      yield* Fiber.interrupt(waiting)
      assert.deepStrictEqual(reasons(), ["address limit", "interrupted"])
      // Stopped while its callback runs: cut short after drainTimeout.
      yield* Effect.forkChild(manager.stop)
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      const [connection] = named("pool.connection")
      assert.strictEqual(connection!.attributes.get("pool.close_reason"), "drain")
      assert.isTrue(connection!.status._tag === "Ended" && Exit.isFailure(connection!.status.exit))
      yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection))
      assert.deepStrictEqual(reasons(), ["address limit", "interrupted", "not running"])
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("with tracing disabled the pool makes no span", () => {
    const { tracer, spans } = recording()
    return Effect.gen(function* () {
      yield* everySpanSite(handle)
      assert.strictEqual(spans.length, 0)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer), Effect.provideService(References.TracerEnabled, false))
  })

  it.effect("with no tracer installed the pool asks Effect's native tracer for no span", () => {
    const native = Tracer.nativeTracer as { span: Tracer.Tracer["span"] }
    const original = native.span
    let made = 0
    return Effect.gen(function* () {
      native.span = function (options) {
        made++
        return original.call(this, options)
      }
      yield* everySpanSite((conn) => Effect.orDie(conn.write("OK")))
      assert.strictEqual(made, 0)
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          native.span = original
        })
      )
    )
  })
})
