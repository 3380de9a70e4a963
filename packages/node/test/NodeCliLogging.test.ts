/**
 * `pool-manager --log-format json --debug`: every line of output is one JSON
 * object, each connection the pool closes is logged at Debug with its reason,
 * and an oversized message at Warning.
 */

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, spawnNode } from "./utils/cliProcess.ts"

interface JsonLine {
  readonly message: unknown
  readonly level: string
  readonly timestamp: string
  readonly annotations: Record<string, unknown>
}

const parseLines = (stdout: string): Array<JsonLine> =>
  stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const parsed = JSON.parse(line) as JsonLine
      assert.isString(parsed.level, line)
      assert.isString(parsed.timestamp, line)
      return parsed
    })

describe("NodeCli logging", () => {
  it.live(
    "--log-format json writes one JSON object per line, with closes at Debug and errors at Warning",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([
          bin,
          "--port",
          "0",
          "--log-format",
          "json",
          "--debug",
          "--max-message-bytes",
          "4"
        ])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+)"/))[1])

        yield* Effect.gen(function* () {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
        }).pipe(Effect.scoped)
        yield* child.waitFor(/"connection closed"/)

        const oversized = yield* connect(port)
        yield* oversized.send("TOO LONG")
        yield* oversized.closed()
        yield* child.waitFor(/larger than maxMessageBytes/)

        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)

        const lines = parseLines(child.stdout())
        const listening = lines.find((line) => String(line.message).includes("listening on"))
        assert.strictEqual(listening?.level, "INFO")
        const closed = lines.filter((line) => line.message === "connection closed")
        assert.deepStrictEqual(
          closed.map((line) => [line.level, line.annotations.reason]),
          [["DEBUG", "peer closed"]]
        )
        assert.match(String(closed[0]!.annotations.remoteAddress), /^127\.0\.0\.1:\d+$/)
        const warning = lines.find((line) => String(line.message).includes("larger than maxMessageBytes"))
        assert.strictEqual(warning?.level, "WARN")
        assert.strictEqual(warning?.annotations.maxMessageBytes, 4)
        // The pool's own events are there too, at Debug.
        assert.isTrue(lines.some((line) => line.message === "connection put" && line.level === "DEBUG"))
      }).pipe(Effect.scoped),
    60_000
  )
})
