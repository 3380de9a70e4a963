import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, MemoryConnection, PoolManager } from "../src/index.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply } from "./utils/soon.ts"

/** A tracer that keeps every span it makes, with the options it was asked for (as an exporter sees them). */
const recording = () => {
  const made: Array<{ readonly span: Tracer.NativeSpan; readonly root: boolean }> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      made.push({ span, root: options.root })
      return span
    }
  })
  const named = (name: string) => made.filter(({ span }) => span.name === name)
  return { tracer, named }
}

const handle: PoolManager.Callback = (conn) => Effect.orDie(conn.write("OK"))

const startedWith = (config: ManagerConfig.Input) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, handle)
    yield* manager.start
    return manager
  })

const served = (manager: PoolManager.PoolManager["Service"]) =>
  Effect.gen(function* () {
    const client = yield* connect(manager)
    yield* client.send("x")
    assert.strictEqual(yield* nextReply(client), "OK")
    return client
  })

describe("PoolManager spans", () => {
  it.effect("pool spans are roots only without a caller's span; puts and messages are internal; no links", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1, maxWorkersCount: 1 })
      const client = yield* served(manager)
      // Refused at once, first with no span around the put, then under the caller's.
      yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection))
      yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection)).pipe(Effect.withSpan("app.refused"))
      yield* client.end
      yield* settle
      yield* served(manager).pipe(Effect.withSpan("app.accept"))

      const [first, second] = named("pool.connection")
      assert.isTrue(first!.root, "a connection put outside any span starts a trace")
      assert.isTrue(Option.isNone(first!.span.parent), "with no parent at all")
      assert.strictEqual(first!.span.kind, "server")
      assert.isFalse(second!.root)
      assert.strictEqual(Option.getOrUndefined(second!.span.parent), named("app.accept")[0]!.span)

      const [bare, underCaller] = named("pool.put")
      assert.isTrue(bare!.root)
      assert.isTrue(Option.isNone(bare!.span.parent))
      assert.isFalse(underCaller!.root)
      assert.strictEqual(Option.getOrUndefined(underCaller!.span.parent), named("app.refused")[0]!.span)

      const messages = named("pool.message")
      assert.strictEqual(messages.length, 2)
      for (const { root } of messages) assert.isFalse(root)
      for (const { span } of [bare!, underCaller!, ...messages]) assert.strictEqual(span.kind, "internal", span.name)
      for (const { span } of [first!, second!, bare!, underCaller!, ...messages]) {
        assert.deepStrictEqual(span.links, [], `${span.name} has no links`)
      }
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("spans are sampled, except under a caller's span that is not", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1 })
      yield* served(manager)
      yield* served(manager).pipe(Effect.withSpan("app.accept", { sampled: false }))
      const sampled = (name: string) => named(name).map(({ span }) => span.sampled)
      assert.deepStrictEqual(sampled("pool.connection"), [true, false])
      assert.deepStrictEqual(sampled("pool.message"), [true, false])
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

  it.effect("below the minimum trace level the pool's spans are not sampled, as Effect's own", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({ messageSpanSampleRate: 1 })
      yield* served(manager)
      yield* Effect.void.pipe(Effect.withSpan("app.own"))
      assert.deepStrictEqual(
        named("app.own").map(({ span }) => span.sampled),
        [false]
      )
      assert.deepStrictEqual(
        [...named("pool.connection"), ...named("pool.message")].map(({ span }) => span.sampled),
        [false, false]
      )
    }).pipe(Effect.provideService(Tracer.Tracer, tracer), Effect.provideService(Tracer.MinimumTraceLevel, "Error"))
  })

  it.effect("with span timing off, the pool's spans start and end at 0, as Effect's own", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      yield* TestClock.adjust("1 second")
      const manager = yield* startedWith({ maxWorkersCount: 1 })
      const client = yield* served(manager)
      yield* Effect.flip(manager.put((yield* MemoryConnection.make()).connection))
      yield* TestClock.adjust("1 second")
      yield* client.end
      yield* settle
      const spans = [...named("pool.connection"), ...named("pool.put")].map(({ span }) => span)
      assert.strictEqual(spans.length, 2)
      for (const span of spans) {
        assert.isTrue(span.status._tag === "Ended", span.name)
        assert.strictEqual(span.startTime, BigInt(0), span.name)
        assert.strictEqual(span.status._tag === "Ended" && span.status.endTime, BigInt(0), span.name)
      }
      assert.strictEqual(named("pool.put")[0]!.span.attributes.get("pool.put.waited_seconds"), 0)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer), Effect.provideService(References.TracerTimingEnabled, false))
  })

  it.effect("a put given up while its worker is spawned ends its connection's span as abandoned", () => {
    const { tracer, named } = recording()
    return Effect.gen(function* () {
      const manager = yield* startedWith({})
      const { connection } = yield* MemoryConnection.make()
      const put = yield* Effect.forkChild(manager.put(connection), { startImmediately: true })
      assert.isUndefined(put.pollUnsafe(), "put waits for the worker being spawned")
      yield* Fiber.interrupt(put)
      yield* settle
      const [span] = named("pool.connection").map(({ span }) => span)
      assert.strictEqual(span?.attributes.get("pool.close_reason"), "abandoned")
      assert.isTrue(span!.status._tag === "Ended" && Exit.isSuccess(span!.status.exit))
      assert.strictEqual((yield* manager.stats).accepted, 0)
    }).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })
})
