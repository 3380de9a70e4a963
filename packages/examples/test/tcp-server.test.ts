/**
 * The Go original's example server (`src/tcp-server.ts`): its callback, its
 * defaults, and the program itself started as a child process on port 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { MemoryConnection } from "@pool-manager/core"
import { Effect } from "effect"
import { defaults, poolCallback } from "../src/tcp-server.ts"
import { connect, request, startExample } from "./utils/example.ts"

const encoder = new TextEncoder()

describe("tcp-server example", () => {
  it.effect("the callback answers OK to a message and ERROR to an empty one", () =>
    Effect.gen(function* () {
      // An empty message cannot be sent over TCP, so the callback is called directly.
      const { client, connection } = yield* MemoryConnection.make()
      yield* poolCallback(connection, encoder.encode("HI!"), 3)
      assert.strictEqual(yield* client.receiveText, "OK")
      yield* poolCallback(connection, new Uint8Array(0), 0)
      assert.strictEqual(yield* client.receiveText, "ERROR")
    })
  )

  it("uses the Go original's configuration as its defaults", () => {
    assert.deepStrictEqual(defaults, {
      debug: true,
      bufferSize: 5120,
      minWorkersCount: 5,
      maxWorkersCount: 10,
      host: "127.0.0.1",
      port: 6263
    })
  })

  it.live(
    "serves OK, refuses a client beyond --max-workers, logs debug events, and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("tcp-server.ts", ["--port", "0", "--max-workers", "3"])
        // --max-workers 3 lowers the default minimum of 5 instead of failing.
        assert.match(child.stdout(), /min-workers=3 max-workers=3 buffer-size=5120 .* debug=true/)
        const held = []
        for (let i = 0; i < 3; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
          held.push(client)
        }
        const refused = yield* connect(port)
        assert.strictEqual(yield* refused.closed(), "ERROR_SERVER_BUSY")
        // debug: true makes the pool's events visible (Debug level).
        yield* child.waitFor(/DEBUG .*pool is busy/)
        child.process.kill("SIGTERM")
        for (const client of held) yield* client.closed()
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "answers one request per connection on a fresh server",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("tcp-server.ts", ["--port", "0", "--no-debug"])
        assert.strictEqual(yield* request(port, "HI!", 2), "OK")
        assert.notMatch(child.stdout(), /DEBUG/)
        child.process.kill("SIGINT")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
