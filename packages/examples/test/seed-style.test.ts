/**
 * The Go original's example written like the Go code (`src/seed-style.ts`), started
 * as a child process on port 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect, startExample } from "./utils/example.ts"

describe("seed-style example", () => {
  it.live(
    "answers OK, refuses the 11th concurrent client with ERROR_SERVER_BUSY, and stops on SIGINT",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("seed-style.ts", ["0"])
        // MaxWorkersCount: 10. Each client keeps its worker while its connection is open.
        for (let i = 0; i < 10; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
        }
        const refused = yield* connect(port)
        assert.strictEqual(yield* refused.closed(), "ERROR_SERVER_BUSY")
        child.process.kill("SIGINT")
        // NodeRuntime.runMain reports an interrupted program with 130.
        assert.strictEqual(yield* child.exit(), 130)
      }).pipe(Effect.scoped),
    60_000
  )
})
