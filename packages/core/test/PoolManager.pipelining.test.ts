import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Schema } from "effect"
import { Framing, PoolManager } from "../src/index.ts"
import { connect } from "./utils/manager.ts"
import { repliesOf } from "./utils/soon.ts"

// A model of pipelining: frames sent in chunks of any size, an Effect callback
// that suspends a random number of times on some of them and returns its
// write as it is on the others (run at once, without the fiber, when the
// transport takes it whole), and a write buffer that fills after a few
// replies; the replies must be every frame's, in frame order.

const between = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

const decoder = new TextDecoder()

describe("PoolManager pipelining model", () => {
  it.effect.prop(
    "replies come in frame order and every frame is answered, however the callback suspends",
    {
      suspensions: Arbitrary.array(between(0, 3), { minLength: 1, maxLength: 40 }),
      chunkSizes: Arbitrary.array(between(1, 30), { minLength: 1, maxLength: 10 }),
      pauses: Arbitrary.array(between(0, 2), { minLength: 1, maxLength: 10 }),
      writeBufferBytes: between(2, 200)
    },
    ({ suspensions, chunkSizes, pauses, writeBufferBytes }) =>
      Effect.gen(function* () {
        const manager = yield* PoolManager.make({ framing: Framing.lines() }, (conn, body) => {
          const text = decoder.decode(body)
          const yields = Number(text.split("-")[0])
          if (yields === 0) return conn.write(`${text};`)
          let effect: Effect.Effect<void> = Effect.void
          for (let i = 0; i < yields; i++) effect = Effect.andThen(effect, Effect.yieldNow)
          return Effect.andThen(effect, Effect.orDie(conn.write(`${text};`)))
        })
        yield* manager.start
        const client = yield* connect(manager, { writeBufferBytes })
        const frames = suspensions.map((yields, index) => `${yields}-${index}`)
        const stream = new TextEncoder().encode(frames.map((frame) => `${frame}\n`).join(""))
        let at = 0
        let chunk = 0
        while (at < stream.length) {
          const size = chunkSizes[chunk % chunkSizes.length]!
          yield* client.send(stream.slice(at, at + size))
          for (let i = 0; i < pauses[chunk % pauses.length]!; i++) yield* Effect.yieldNow
          at += size
          chunk++
        }
        const expected = frames.map((frame) => `${frame};`).join("")
        assert.strictEqual(yield* repliesOf(client, expected.length), expected)
        assert.strictEqual((yield* manager.stats).messages, frames.length)
        yield* manager.stop
      }).pipe(Effect.scoped),
    { arbitrary: { runs: 60 } }
  )
})
