import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Tracer } from "effect"
import { vi } from "vitest"
import { type PoolError as Errors, Framing, type ManagerConfig, PoolManager } from "../src/index.ts"
import { fakeTransport } from "./utils/fakeTransport.ts"
import { connect, type Seen, settle, started } from "./utils/manager.ts"
import { nextReply, serverClosed } from "./utils/soon.ts"
import { recording } from "./utils/tracing.ts"

// The serve loop's framing under the Go rule, a framing's frames and cork,
// stop with bytes not yet announced, and what a message costs in metrics and spans.

const decoder = new TextDecoder()

const answer: PoolManager.Callback<Errors.ConnectionError> = (conn, body) => conn.write(`OK:${decoder.decode(body)}`)

const startedWith = <E>(config: ManagerConfig.Input, callback: PoolManager.Callback<E> | PoolManager.SyncCallback) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, callback)
    yield* manager.start
    return manager
  })

describe("serve: the Go rule", () => {
  it.effect("a message of exactly maxMessageBytes is served, one byte more closes the connection", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4, maxMessageBytes: 6 }, seen)
      const exact = yield* connect(manager)
      yield* exact.send("abcdef")
      assert.strictEqual(yield* nextReply(exact), "OK:abcdef")
      const over = yield* connect(manager)
      yield* over.send("abcdefg")
      yield* serverClosed(over)
      assert.deepStrictEqual(seen, ["abcdef"])
      assert.strictEqual((yield* manager.stats).closedBySize, 1)
    })
  )

  it.effect("reads that filled the buffer are joined with what follows, up to a read that does not", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4 }, seen)
      const client = yield* connect(manager)
      // Four reads as Go would see them: two full, one short (the end of a message), then another message.
      yield* client.send("aaaa")
      yield* client.send("bbbb")
      yield* client.send("cc")
      yield* client.send("dd")
      yield* settle
      assert.deepStrictEqual(seen, ["aaaabbbbcc", "dd"])
    })
  )

  it.effect("full reads that reach exactly maxMessageBytes, then one byte more, are too large", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4, maxMessageBytes: 8 }, seen)
      const alone = yield* connect(manager)
      yield* alone.send("aaaaaaaa")
      assert.strictEqual(yield* nextReply(alone), "OK:aaaaaaaa")
      const continued = yield* connect(manager)
      yield* continued.send("aaaaaaaa")
      yield* continued.send("x")
      yield* settle
      assert.isTrue(yield* continued.isClosed)
      assert.deepStrictEqual(seen, ["aaaaaaaa"])
      assert.strictEqual((yield* manager.stats).closedBySize, 1)
    })
  )

  it.effect("joined reads over maxMessageBytes close the connection without calling the callback", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ bufferSize: 4, maxMessageBytes: 6 }, seen)
      const client = yield* connect(manager)
      yield* client.send("aaaa")
      yield* client.send("bbbb")
      yield* settle
      assert.isTrue(yield* client.isClosed)
      assert.deepStrictEqual(seen, [])
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedBySize, 1)
      assert.strictEqual(stats.messages, 0)
    })
  )
})

describe("serve: a framing's frames", () => {
  it.effect("a syncCallback answers every frame of a chunk that arrives while the connection waits, once each", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* startedWith(
        { framing: Framing.lines() },
        PoolManager.syncCallback((conn, body) => {
          // A bound on a loop gone wrong: fail the connection rather than spin.
          if (seen.length >= 10) throw new Error("too many frames")
          seen.push(decoder.decode(body))
          conn.writeNow(`${decoder.decode(body)};`)
        })
      )
      const client = yield* connect(manager)
      yield* settle
      yield* client.send("a\nb\nc\n")
      assert.strictEqual(yield* nextReply(client), "a;b;c;")
      assert.deepStrictEqual(seen, ["a", "b", "c"])
      assert.strictEqual((yield* manager.stats).messages, 3)
    })
  )

  it.effect("setConfig's maxMessageBytes applies to an open connection's next frame", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith({ framing: Framing.lines() }, answer)
      const client = yield* connect(manager)
      yield* client.send("hello\n")
      assert.strictEqual(yield* nextReply(client), "OK:hello")
      yield* manager.setConfig({ framing: Framing.lines(), maxMessageBytes: 4 })
      yield* client.send("hello\n")
      yield* settle
      assert.isTrue(yield* client.isClosed)
      assert.strictEqual((yield* manager.stats).closedBySize, 1)
    })
  )

  it.effect("maxMessagesPerConnection counts frames: the frames after the limit are not served", () =>
    Effect.gen(function* () {
      const seen: Seen = []
      const manager = yield* started({ framing: Framing.lines(), maxMessagesPerConnection: 2 }, seen)
      const client = yield* connect(manager)
      yield* client.send("a\nb\nc\n")
      yield* serverClosed(client)
      yield* settle
      assert.deepStrictEqual(seen, ["a", "b"])
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByMessageLimit, 1)
      assert.strictEqual(stats.messages, 2)
    })
  )

  it.effect("a chunk of several frames corks the transport once, whatever bufferSize; a chunk of one does not", () =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      // bufferSize is the Go rule's read size: it does not cut a framing's chunks into pieces.
      const manager = yield* startedWith({ framing: Framing.lines(), bufferSize: 2 }, answer)
      fake.arrive("a\nb\n")
      yield* manager.put(fake.connection)
      yield* settle
      assert.deepStrictEqual(fake.events, ["cork", "write OK:a", "write OK:b"])
      fake.arrive("c\n")
      fake.notify("readable")
      yield* settle
      assert.deepStrictEqual(fake.events, ["cork", "write OK:a", "write OK:b", "write OK:c"])
    })
  )

  it.effect(
    "a peer that closes after a partial frame is counted as the peer closing; the partial frame is dropped",
    () =>
      Effect.gen(function* () {
        const seen: Seen = []
        const manager = yield* started({ framing: Framing.lines() }, seen)
        const client = yield* connect(manager)
        yield* client.send("whole\npart")
        yield* client.end
        yield* serverClosed(client)
        yield* settle
        assert.deepStrictEqual(seen, ["whole"])
        const stats = yield* manager.stats
        assert.strictEqual(stats.closedByPeer, 1)
        assert.strictEqual(stats.messages, 1)
      })
  )

  it.effect("a transport without cork is served all the same", () =>
    Effect.gen(function* () {
      const fake = fakeTransport({ withoutCork: true })
      const manager = yield* startedWith({ framing: Framing.lines() }, answer)
      fake.arrive("a\nb\n")
      yield* manager.put(fake.connection)
      yield* settle
      assert.deepStrictEqual(fake.writes, ["OK:a", "OK:b"])
      assert.strictEqual((yield* manager.stats).callbackFailures, 0)
    })
  )
})

describe("serve: stop with bytes not yet announced", () => {
  it.effect("under the Go rule, the bytes are served, then the connection closes as stopped", () =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      const manager = yield* startedWith({}, answer)
      yield* manager.put(fake.connection)
      yield* settle
      assert.isTrue(fake.waiting)
      fake.arrive("late")
      yield* manager.stop
      assert.deepStrictEqual(fake.writes, ["OK:late"])
      const stats = yield* manager.stats
      assert.strictEqual(stats.messages, 1)
      assert.strictEqual(stats.closedByStop, 1)
    })
  )

  it.effect("with a framing, a frame completed by the second of two chunks is served", () =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      const manager = yield* startedWith({ framing: Framing.lines() }, answer)
      yield* manager.put(fake.connection)
      yield* settle
      fake.arrive("ab", "c\n")
      yield* manager.stop
      assert.deepStrictEqual(fake.writes, ["OK:abc"])
      assert.strictEqual((yield* manager.stats).closedByStop, 1)
    })
  )

  it.effect("a readiness callback that comes after the stop ended the wait is ignored", () =>
    Effect.gen(function* () {
      const fake = fakeTransport({ ineffectiveCancel: true })
      const manager = yield* startedWith({}, answer)
      yield* manager.put(fake.connection)
      yield* settle
      yield* manager.stop
      assert.doesNotThrow(() => fake.notify("readable"))
      assert.doesNotThrow(() => fake.notify("timeout"))
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByStop, 1)
      assert.strictEqual(stats.closedByPeer + stats.closedByDeadline, 0)
    })
  )
})

describe("serve: a syncCallback in the transport's event", () => {
  const syncAnswer = (bodies: Array<string>) =>
    PoolManager.syncCallback((conn, body) => {
      const text = decoder.decode(body)
      bodies.push(text)
      if (text === "boom") throw new Error("boom")
      conn.writeNow(`OK:${text}`)
    })

  it.effect("answers inside the readable event itself", () =>
    Effect.gen(function* () {
      const fake = fakeTransport()
      const manager = yield* startedWith({}, syncAnswer([]))
      yield* manager.put(fake.connection)
      yield* settle
      const during = yield* Effect.sync(() => {
        fake.arrive("ping")
        fake.notify("readable")
        return [...fake.writes]
      })
      assert.deepStrictEqual(during, ["OK:ping"])
    })
  )

  it.effect("a peer that closes while the connection waits is the peer closing, not a message", () =>
    Effect.gen(function* () {
      const bodies: Array<string> = []
      const manager = yield* startedWith({}, syncAnswer(bodies))
      const client = yield* connect(manager)
      yield* settle
      yield* client.end
      yield* settle
      const stats = yield* manager.stats
      assert.strictEqual(stats.closedByPeer, 1)
      assert.strictEqual(stats.callbackFailures, 0)
      assert.strictEqual(stats.messages, 0)
      assert.deepStrictEqual(bodies, [])
    })
  )

  it.effect("a throw while the connection waited closes it, counted once, the message counted once", () =>
    Effect.gen(function* () {
      const bodies: Array<string> = []
      const manager = yield* startedWith({}, syncAnswer(bodies))
      const client = yield* connect(manager)
      yield* client.send("fine")
      assert.strictEqual(yield* nextReply(client), "OK:fine")
      yield* settle
      yield* client.send("boom")
      yield* settle
      assert.isTrue(yield* client.isClosed)
      assert.deepStrictEqual(bodies, ["fine", "boom"])
      const stats = yield* manager.stats
      assert.strictEqual(stats.callbackFailures, 1)
      assert.strictEqual(stats.messages, 2)
      assert.strictEqual(stats.bytesRead, 8)
    })
  )

  it.effect("maxMessagesPerConnection holds for messages answered in the event", () =>
    Effect.gen(function* () {
      const manager = yield* startedWith({ maxMessagesPerConnection: 2 }, syncAnswer([]))
      const client = yield* connect(manager)
      for (const text of ["a", "b"]) {
        yield* settle
        yield* client.send(text)
        assert.strictEqual(yield* nextReply(client), `OK:${text}`)
      }
      yield* settle
      assert.isTrue(yield* client.isClosed)
      assert.strictEqual((yield* manager.stats).closedByMessageLimit, 1)
    })
  )
})

describe("serve: what a message costs in metrics and spans", () => {
  const durations = Effect.map(
    Metric.snapshot,
    (snapshots) => snapshots.find((s) => s.id === "pool_callback_duration_seconds")!.state as Metric.HistogramState
  )

  it.effect("the callback's duration is observed in seconds, for a failed callback too", () =>
    Effect.gen(function* () {
      let now = 1000
      const spy = vi.spyOn(performance, "now").mockImplementation(() => now)
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      const manager = yield* startedWith<Error>({}, (conn, body) =>
        Effect.suspend(() => {
          now += 2500
          return decoder.decode(body) === "fail" ? Effect.fail(new Error("fail")) : Effect.orDie(conn.write("OK"))
        })
      )
      const client = yield* connect(manager)
      yield* client.send("ok")
      assert.strictEqual(yield* nextReply(client), "OK")
      yield* settle
      let histogram = yield* durations
      assert.strictEqual(histogram.count, 1)
      assert.strictEqual(histogram.sum, 2.5)
      yield* client.send("fail")
      yield* serverClosed(client)
      yield* settle
      histogram = yield* durations
      assert.strictEqual(histogram.count, 2)
      assert.strictEqual(histogram.sum, 5)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("messageSpanSampleRate: a message is traced when Math.random() is below the rate", () =>
    Effect.gen(function* () {
      const { tracer, named } = recording()
      const random = vi.spyOn(Math, "random")
      yield* Effect.addFinalizer(() => Effect.sync(() => random.mockRestore()))
      const manager = yield* startedWith({ messageSpanSampleRate: 0.5 }, answer).pipe(
        Effect.provideService(Tracer.Tracer, tracer)
      )
      const client = yield* connect(manager)
      for (const [draw, text] of [
        [0.5, "at"],
        [0.75, "above"],
        [0.25, "below"]
      ] as const) {
        random.mockReturnValue(draw)
        yield* client.send(text)
        assert.strictEqual(yield* nextReply(client), `OK:${text}`)
      }
      const messages = named("pool.message")
      assert.strictEqual(messages.length, 1, "only the draw below the rate is traced")
      assert.strictEqual(messages[0]!.attributes.get("pool.message.bytes"), 5)
    })
  )
})
