/**
 * Benchmark server using Effect 4.1's own `NodeSocketServer`: per connection,
 * pull a batch with a 3 s timeout and write `OK` per chunk (with `--echo`,
 * the chunk itself).
 * Prints `listening <port>` once bound to 127.0.0.1 (port 0), exits on SIGTERM
 * (NodeRuntime.runMain interrupts the main fiber, which closes the server).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NetAddress from "effect/net/NetAddress"
import type * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"

const OK = new TextEncoder().encode("OK")
const echo = process.argv.includes("--echo")

const handle = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { pull } = yield* socket.reader
    const writer = yield* socket.writer
    while (true) {
      const chunks = yield* Effect.timeout(pull, "3 seconds")
      for (let i = 0; i < chunks.length; i++) yield* writer.write(echo ? chunks[i]! : OK)
    }
  }).pipe(
    Effect.scoped,
    // Peer closes, resets and idle timeouts all just end the connection.
    Effect.catchTags({ SocketError: () => Effect.void, TimeoutError: () => Effect.void })
  )

const main = Effect.gen(function* () {
  const server = yield* SocketServer.SocketServer
  const port = NetAddress.isInetAddress(server.address) ? server.address.port : -1
  process.stdout.write(`listening ${port}\n`)
  return yield* server.run(handle)
}).pipe(Effect.provide(NodeSocketServer.layer({ host: "127.0.0.1", port: 0, backlog: 4096 })))

// runMain exits with 130 after an interruption (our SIGTERM); report that as a clean exit.
NodeRuntime.runMain(main, {
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
})
