/**
 * The pool as one layer of a larger application (`src/composed.ts`): the
 * callback with its services provided by a layer, and the whole app started
 * as a child process on port 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { MemoryConnection } from "@pool-manager/core"
import { Effect } from "effect"
import { callback, Greeter } from "../src/composed.ts"
import { request, startExample } from "./utils/example.ts"

const encoder = new TextEncoder()

describe("composed example", () => {
  it.effect("the callback greets with the services from the layer graph", () =>
    Effect.gen(function* () {
      const { client, connection } = yield* MemoryConnection.make()
      yield* callback(connection, encoder.encode("ada"), 3)
      assert.strictEqual(yield* client.receiveText, "Hello, ada! (request #1)\n")
      yield* callback(connection, encoder.encode("bob\n"), 4)
      assert.strictEqual(yield* client.receiveText, "Hello, bob! (request #2)\n")
    }).pipe(Effect.provide(Greeter.layer))
  )

  it.live(
    "serves greetings over TCP, numbering requests across connections, and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("composed.ts", ["0"])
        const first = "Hello, ada! (request #1)\n"
        assert.strictEqual(yield* request(port, "ada", first.length), first)
        const second = "Hello, bob! (request #2)\n"
        assert.strictEqual(yield* request(port, "bob", second.length), second)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
