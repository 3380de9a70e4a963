import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Framing, PoolManager } from "../src/index.ts"
import { framed, type Logged } from "./utils/framing.ts"
import { connect, settle } from "./utils/manager.ts"
import { nextReply, repliesOf, serverClosed } from "./utils/soon.ts"

describe("PoolManager with a framing", () => {
  for (const kind of ["effect", "sync"] as const) {
    describe(`${kind} callback`, () => {
      it.effect("answers every frame of a chunk, in order, in one delivery to the client", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const manager = yield* framed({ framing: Framing.lines() }, seen, kind)
          const client = yield* connect(manager)
          yield* client.send("PING\r\nPING\nECHO x\n")
          // One receive takes what was written when the client was woken: all three replies (the chunk was corked).
          assert.strictEqual(yield* nextReply(client), "PING;PING;ECHO x;")
          assert.deepStrictEqual(seen, ["PING", "PING", "ECHO x"])
          assert.strictEqual((yield* manager.stats).messages, 3)
        })
      )

      it.effect("joins a frame split across chunks, and keeps what follows it", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const manager = yield* framed({ framing: Framing.lines() }, seen, kind)
          const client = yield* connect(manager)
          yield* client.send("PI")
          yield* settle
          assert.deepStrictEqual(seen, [])
          yield* client.send("NG\nPO")
          assert.strictEqual(yield* nextReply(client), "PING;")
          yield* client.send("NG\n")
          assert.strictEqual(yield* nextReply(client), "PONG;")
          assert.deepStrictEqual(seen, ["PING", "PONG"])
        })
      )

      it.effect("frames by a length field", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const manager = yield* framed(
            { framing: Framing.lengthField({ lengthFieldLength: 2, initialBytesToStrip: 2 }) },
            seen,
            kind
          )
          const client = yield* connect(manager)
          yield* client.send(Uint8Array.of(0, 2, 104, 105, 0, 0, 0, 3, 102))
          assert.strictEqual(yield* nextReply(client), "hi;;")
          yield* client.send(Uint8Array.of(111, 111))
          assert.strictEqual(yield* nextReply(client), "foo;")
          assert.deepStrictEqual(seen, ["hi", "", "foo"])
        })
      )

      it.effect("a partial frame when the deadline passes closes as deadline", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const manager = yield* framed({ framing: Framing.lines(), clientsDeadline: "1 second" }, seen, kind)
          const client = yield* connect(manager)
          yield* client.send("half a li")
          yield* TestClock.adjust("1 second")
          yield* serverClosed(client)
          assert.deepStrictEqual(seen, [])
          assert.strictEqual((yield* manager.stats).closedByDeadline, 1)
        })
      )
    })
  }

  it.effect("setConfig changes the framing of connections admitted afterwards only", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const manager = yield* framed({ framing: "lines" }, seen, "effect")
      const before = yield* connect(manager)
      yield* manager.setConfig({ framing: Framing.delimiter(";") })
      const after = yield* connect(manager)
      yield* before.send("a;b\n")
      assert.strictEqual(yield* nextReply(before), "a;b;")
      yield* after.send("a;b\n")
      assert.strictEqual(yield* nextReply(after), "a;")
      assert.deepStrictEqual(seen, ["a;b", "a"])
      assert.strictEqual(Framing.format((yield* manager.config).framing), "delimiter:;")
    })
  )

  it.effect("partial frames at stop are dropped with the close; complete ones are answered", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const manager = yield* framed({ framing: Framing.lines() }, seen, "effect")
      const client = yield* connect(manager)
      yield* client.send("done\nnot do")
      assert.strictEqual(yield* nextReply(client), "done;")
      yield* manager.stop
      assert.isTrue(yield* client.isClosed)
      assert.deepStrictEqual(seen, ["done"])
      assert.strictEqual((yield* manager.stats).closedByStop, 1)
    })
  )

  it.effect(
    "an Effect callback that suspends mid-batch answers in frame order, and earlier replies leave at once",
    () =>
      Effect.gen(function* () {
        const manager = yield* PoolManager.make({ framing: Framing.lines() }, (conn, body) => {
          const text = new TextDecoder().decode(body)
          const reply = Effect.orDie(conn.write(`${text};`))
          return text.startsWith("slow") ? Effect.andThen(Effect.sleep("1 second"), reply) : reply
        })
        yield* manager.start
        const client = yield* connect(manager)
        yield* client.send("a\nslow b\nc\n")
        // Not corked behind the sleeping callback: the first reply arrives while it sleeps.
        assert.strictEqual(yield* nextReply(client), "a;")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* repliesOf(client, "slow b;c;".length), "slow b;c;")
      })
  )
})

describe("PoolManager: bad input closes its connection only", () => {
  const decoderOf =
    (decode: (buffered: Uint8Array) => Framing.Decoded): (() => Framing.Decoder) =>
    () => ({ decode })

  const cases: ReadonlyArray<{
    readonly name: string
    readonly framing: Framing.Framing
    readonly maxMessageBytes?: number
    readonly good: string | Uint8Array
    readonly goodReply: string
    readonly bad: Uint8Array | string
    readonly stat: "closedBySize" | "closedByFraming"
  }> = [
    {
      name: "a line over maxLength",
      framing: Framing.lines({ maxLength: 8 }),
      good: "ok\n",
      goodReply: "ok;",
      bad: "123456789",
      stat: "closedBySize"
    },
    {
      name: "a line over maxMessageBytes",
      framing: Framing.lines(),
      maxMessageBytes: 4,
      good: "ok\n",
      goodReply: "ok;",
      bad: "12345",
      stat: "closedBySize"
    },
    {
      name: "a frame over a delimiter's maxLength",
      framing: Framing.delimiter("||", { maxLength: 3 }),
      good: "ok||",
      goodReply: "ok;",
      bad: "abcd|",
      stat: "closedBySize"
    },
    {
      name: "a length field over maxFrameLength (found from the header alone)",
      framing: Framing.lengthField({ lengthFieldLength: 4, maxFrameLength: 100 }),
      good: Uint8Array.of(0, 0, 0, 1, 120),
      goodReply: "\0\0\0\x01x;",
      bad: Uint8Array.of(0, 0, 1, 0),
      stat: "closedBySize"
    },
    {
      name: "a length field over maxMessageBytes",
      framing: Framing.lengthField({ lengthFieldLength: 2, initialBytesToStrip: 2 }),
      maxMessageBytes: 16,
      good: Uint8Array.of(0, 1, 120),
      goodReply: "x;",
      bad: Uint8Array.of(0, 17),
      stat: "closedBySize"
    },
    {
      name: "an 8-byte length field over Number.MAX_SAFE_INTEGER",
      framing: Framing.lengthField({ lengthFieldLength: 8 }),
      good: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 120),
      goodReply: "\0\0\0\0\0\0\0\x01x;",
      bad: Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 0),
      stat: "closedByFraming"
    },
    {
      name: "a length that the adjustment makes negative",
      framing: Framing.lengthField({ lengthFieldLength: 1, lengthAdjustment: -2, initialBytesToStrip: 1 }),
      good: Uint8Array.of(3, 120),
      goodReply: "x;",
      bad: Uint8Array.of(1),
      stat: "closedByFraming"
    },
    {
      name: "a custom decoder that throws",
      framing: Framing.custom(
        "thrower",
        decoderOf((buffered) => {
          if (buffered[0] === 33) throw new Framing.FrameError({ message: "no bangs" })
          return { frames: [buffered], consumed: buffered.length }
        })
      ),
      good: "ok",
      goodReply: "ok;",
      bad: "!",
      stat: "closedByFraming"
    },
    ...[-1, 99, 0.5, Number.NaN].map((consumed) => ({
      name: `a custom decoder that returns consumed ${consumed}`,
      framing: Framing.custom(
        "liar",
        decoderOf((buffered) =>
          buffered[0] === 33 ? { frames: [], consumed } : { frames: [buffered], consumed: buffered.length }
        )
      ),
      good: "ok",
      goodReply: "ok;",
      bad: "!",
      stat: "closedByFraming" as const
    })),
    {
      name: "a custom decoder that holds a partial frame over maxMessageBytes",
      framing: Framing.custom(
        "hoarder",
        decoderOf((buffered) =>
          buffered[0] === 33 ? { frames: [], consumed: 0 } : { frames: [buffered], consumed: buffered.length }
        )
      ),
      maxMessageBytes: 4,
      good: "ok",
      goodReply: "ok;",
      bad: "!2345",
      stat: "closedBySize"
    }
  ]

  for (const test of cases) {
    it.effect(test.name, () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const logged: Array<Logged> = []
        const manager = yield* framed(
          { framing: test.framing, maxMessageBytes: test.maxMessageBytes ?? 1024, maxWorkersCount: 1 },
          seen,
          "effect",
          logged
        )
        const client = yield* connect(manager, { remoteAddress: "bad:1" })
        yield* client.send(test.good)
        assert.strictEqual(yield* nextReply(client), test.goodReply)
        // The bad input, then bytes that would be a good frame: nothing after the bad one reaches the callback.
        const seenBefore = seen.length
        yield* client.send(test.bad)
        yield* client.send(test.good)
        yield* serverClosed(client)
        yield* settle
        assert.strictEqual(seen.length, seenBefore)
        const stats = yield* manager.stats
        assert.strictEqual(stats[test.stat], 1)
        assert.strictEqual(stats.closedBySize + stats.closedByFraming, 1)
        assert.strictEqual(stats.busy, 0)
        const warnings = logged.filter((entry) => entry.annotations.remoteAddress === "bad:1")
        assert.strictEqual(warnings.length, 1)
        assert.isString(warnings[0]!.annotations.reason)
        // The worker is reused: the next connection is served by the same one.
        const next = yield* connect(manager)
        yield* next.send(test.good)
        assert.strictEqual(yield* nextReply(next), test.goodReply)
        assert.strictEqual((yield* manager.stats).spawned, 1)
      })
    )
  }

  it.effect("a decoder whose make throws closes that connection as framing", () =>
    Effect.gen(function* () {
      const logged: Array<Logged> = []
      const manager = yield* framed(
        {
          framing: Framing.custom("broken", () => {
            throw new Error("no decoder today")
          })
        },
        [],
        "sync",
        logged
      )
      const client = yield* connect(manager)
      yield* serverClosed(client)
      yield* settle
      assert.strictEqual((yield* manager.stats).closedByFraming, 1)
      assert.match(String(logged[0]?.annotations.reason), /no decoder today/)
    })
  )
})
