/**
 * The HAProxy agent-check endpoint: its replies, over loopback in-process and
 * from the real command through its lame-duck period; a peer that resets the
 * connection after the reply is no error of the server's.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeAgentCheck } from "../src/index.ts"
import { agentCheck as check, connect, portOf } from "./utils/client.ts"
import { bin, spawnNode } from "./utils/cliProcess.ts"

describe("NodeAgentCheck", () => {
  it("reports free capacity as a weight, 100% without a limit, drain when stopping", () => {
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 0, max: 10 }), "up ready 100%\n")
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 6, max: 10 }), "up ready 40%\n")
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 2, max: 3 }), "up ready 33%\n")
    // Full (or over, after a reload lowered the limit): 1%, never 0, so a client is told it is busy.
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 10, max: 10 }), "up ready 1%\n")
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 12, max: 10 }), "up ready 1%\n")
    assert.strictEqual(NodeAgentCheck.reply({ draining: false, busy: 50, max: 0 }), "up ready 100%\n")
    assert.strictEqual(NodeAgentCheck.reply({ draining: true, busy: 0, max: 10 }), "drain\n")
  })

  it.live("answers each connection with the state of the moment, whatever the agent sends", () =>
    Effect.gen(function* () {
      let state: NodeAgentCheck.State = { draining: false, busy: 3, max: 4 }
      const agent = yield* NodeAgentCheck.make({ port: 0, state: Effect.sync(() => state) })
      const port = portOf(agent.address)
      assert.strictEqual(yield* check(port), "up ready 25%\n")
      state = { draining: true, busy: 3, max: 4 }
      assert.strictEqual(yield* check(port, "hello from haproxy\n"), "drain\n")
    })
  )

  it.live("a peer that resets the connection after the reply leaves the endpoint answering", () =>
    Effect.gen(function* () {
      // An error event without a listener would be thrown out of the socket's event, to the process.
      const uncaught: Array<unknown> = []
      const record = (error: unknown) => void uncaught.push(error)
      yield* Effect.acquireRelease(
        Effect.sync(() => process.prependListener("uncaughtException", record)),
        () => Effect.sync(() => process.off("uncaughtException", record))
      )
      const agent = yield* NodeAgentCheck.make({ port: 0, state: Effect.succeed({ draining: false, busy: 0, max: 2 }) })
      const port = portOf(agent.address)
      // Half-open: this peer keeps its side open after the reply, then resets it (the server's socket gets ECONNRESET).
      const reset = yield* Effect.callback<string>((resume) => {
        const socket = Net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
        let text = ""
        socket.on("data", (chunk) => {
          text += chunk
        })
        socket.on("error", () => {})
        // A moment after the reply's end, so the server's socket is still open waiting for this side's end.
        socket.on("end", () =>
          setTimeout(() => {
            socket.resetAndDestroy()
            resume(Effect.succeed(text))
          }, 50)
        )
      })
      assert.strictEqual(reset, "up ready 100%\n")
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* check(port), "up ready 100%\n")
      assert.deepStrictEqual(uncaught, [], "the reset raised no uncaught error")
    }).pipe(Effect.scoped)
  )

  it.live("a port in use is a ListenError naming the address", () =>
    Effect.gen(function* () {
      const first = yield* NodeAgentCheck.make({ port: 0, state: Effect.succeed({ draining: false, busy: 0, max: 1 }) })
      const port = portOf(first.address)
      const error = yield* Effect.flip(
        NodeAgentCheck.make({ port, state: Effect.succeed({ draining: false, busy: 0, max: 1 }) })
      )
      assert.strictEqual(error._tag, "ListenError")
      assert.strictEqual(error.address, `127.0.0.1:${port}`)
    })
  )

  it.live(
    "the command reports its busy workers, then drain from SIGTERM through the lame-duck period",
    () =>
      Effect.gen(function* () {
        const flags = "--port 0 --agent-port 0 --max-workers 4 --shutdown-delay 2s"
        const child = yield* spawnNode([bin, ...flags.split(" ")])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        const agentPort = Number((yield* child.waitFor(/agent-check at 127\.0\.0\.1:(\d+)/))[1])
        assert.strictEqual(yield* check(agentPort), "up ready 100%\n")
        const client = yield* connect(port)
        yield* client.send("HI!")
        yield* client.receive(2)
        assert.strictEqual(yield* check(agentPort), "up ready 75%\n")
        child.process.kill("SIGTERM")
        yield* child.waitFor(/shutting down: still accepting/)
        assert.strictEqual(yield* check(agentPort), "drain\n")
        client.socket.end()
        assert.strictEqual(yield* child.exit(10_000), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
