/**
 * The metrics endpoint's guards, in-process on a real loopback port: a
 * client that sends no headers, or trickles them past `headersTimeout`, is
 * closed; a keep-alive client gets a new deadline for its next request; past
 * `maxConnections` a new connection is closed at once; `/healthz` answers
 * meanwhile.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeMetricsServer } from "../src/index.ts"
import { connect, portOf } from "./utils/client.ts"
import { get } from "./utils/cliProcess.ts"

describe("NodeMetricsServer limits", () => {
  it.live("a port in use is a ListenError naming the address", () =>
    Effect.gen(function* () {
      const health = Effect.succeed({ healthy: true, detail: "ok" })
      const first = yield* NodeMetricsServer.make({ port: 0, health })
      const port = portOf(first.address)
      const error = yield* Effect.flip(NodeMetricsServer.make({ port, health }))
      assert.strictEqual(error._tag, "ListenError")
      assert.strictEqual(error.address, `127.0.0.1:${port}`)
    })
  )

  it.live(
    "closes clients without headers after headersTimeout and connections past maxConnections",
    () =>
      Effect.gen(function* () {
        const server = yield* NodeMetricsServer.make({
          port: 0,
          health: Effect.succeed({ healthy: true, detail: "ok" }),
          headersTimeout: "600 millis",
          maxConnections: 4
        })
        const port = portOf(server.address)
        const url = NodeMetricsServer.url(server.address)
        const started = Date.now()
        const silent = yield* connect(port)
        const trickling = yield* connect(port)
        yield* trickling.send("GET /healthz HTTP/1.1\r\n")
        // A complete request in time is answered.
        assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 200, body: "ok\n" })
        yield* silent.closed(3000)
        yield* trickling.closed(3000)
        const millis = Date.now() - started
        assert.isAtLeast(millis, 550)
        assert.isBelow(millis, 3000)

        // Four held connections, then a fifth: closed as it arrives.
        const held = yield* Effect.forEach(Array.from({ length: 4 }), () => connect(port))
        const fifth = yield* connect(port)
        yield* fifth.closed(300)
        for (const client of held) client.socket.destroy()
        yield* Effect.sleep("50 millis")
        assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 200, body: "ok\n" })
      }).pipe(Effect.scoped),
    20_000
  )
})
