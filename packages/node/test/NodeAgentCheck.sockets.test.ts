/**
 * `NodeAgentCheck`: the endpoint lets go of each connection. After its reply
 * the server's side of a checked connection closes as soon as the agent
 * closes its own, and one whose agent never closes is dropped after 5 s
 * (counted as Node's open TCP sockets in this process).
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeAgentCheck } from "../src/index.ts"
import { agentCheck as check, portOf } from "./utils/client.ts"
import { openTcpSockets } from "./utils/resources.ts"
import { until } from "./utils/socketPair.ts"

const state = Effect.succeed<NodeAgentCheck.State>({ draining: false, busy: 1, max: 4 })

describe("NodeAgentCheck sockets", () => {
  it.live("the server's side of a check closes with the agent's, whatever the agent sent", () =>
    Effect.gen(function* () {
      const agent = yield* NodeAgentCheck.make({ port: 0, state })
      const port = portOf(agent.address)
      const before = openTcpSockets()
      assert.strictEqual(yield* check(port), "up ready 75%\n")
      assert.strictEqual(yield* check(port, "hello from haproxy\n"), "up ready 75%\n")
      yield* until(() => openTcpSockets() <= before, "the server's sides of both checks to close", "2 seconds")
    })
  )

  it.live(
    "a connection whose agent never closes its side is dropped after 5 seconds",
    () =>
      Effect.gen(function* () {
        const agent = yield* NodeAgentCheck.make({ port: 0, state })
        const port = portOf(agent.address)
        const before = openTcpSockets()
        // A peer that takes the reply but keeps its side open.
        const peer = Net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
        let reply = ""
        let ended = false
        peer.on("data", (chunk) => {
          reply += chunk
        })
        peer.on("end", () => {
          ended = true
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => peer.destroy()))
        yield* until(() => ended, "the reply and the server's end of it")
        assert.strictEqual(reply, "up ready 75%\n")
        const started = Date.now()
        // Still held a while: the peer's side and the server's.
        yield* Effect.sleep("1 second")
        assert.strictEqual(openTcpSockets(), before + 2, "both sides of the held connection are open")
        yield* until(() => openTcpSockets() <= before + 1, "the server to drop its side", "9 seconds")
        assert.isAtLeast(Date.now() - started, 3500)
      }).pipe(Effect.scoped),
    20_000
  )
})
