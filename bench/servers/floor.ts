/**
 * The floor of an Effect-callback server: the least such a design can do per
 * message, as an anchor for the pool's cost (BENCHMARKS.md, "The floor").
 * Plain `node:net`, one fiber per connection, resumed once per 'data' chunk
 * through `Effect.callback` with the answer's effect, an Effect callback
 * `Effect.sync(() => socket.write(OK))` (with `--echo`, the chunk itself), the
 * same replies as raw.ts and pool.ts. Nothing else: no pool, no framing, no
 * counters, no deadline. Prints `listening <port>` once bound to 127.0.0.1
 * (port 0), exits on SIGTERM after printing `accepted <n>` on stderr.
 */
import * as Net from "node:net"
import * as Effect from "effect/Effect"
import { listenOnLoopback } from "./listen.ts"

const OK = Buffer.from("OK")
const echo = process.argv.includes("--echo")
let accepted = 0

// What a user's Effect callback is: a fresh effect per message, run by the connection's fiber.
const callback = (socket: Net.Socket, chunk: Buffer): Effect.Effect<void> =>
  Effect.sync(() => {
    socket.write(echo ? chunk : OK)
  })

const serve = (socket: Net.Socket): void => {
  let waiting: ((effect: Effect.Effect<void>) => void) | undefined
  // Chunks that arrived while the fiber was not waiting: the run loop yields to
  // the event loop now and then, and a large echo arrives in several chunks.
  // Not a framing: each chunk is still one message, answered as it is.
  const backlog: Array<Buffer> = []
  let closed = false

  // One parameter and no canceller: Effect pushes no finalizer per wait.
  const next = Effect.callback<void>((resume) => {
    const chunk = backlog.shift()
    if (chunk !== undefined) resume(callback(socket, chunk))
    else if (closed) resume(Effect.void)
    else waiting = resume
  })
  // Built once: a message costs the callback's effect and one resumption, no loop objects.
  const loop: Effect.Effect<void> = Effect.flatMap(next, () => (closed && backlog.length === 0 ? Effect.void : loop))

  // The resumption runs the fiber here, synchronously, through Effect's run loop.
  const wake = (effect: Effect.Effect<void>) => {
    const resume = waiting!
    waiting = undefined
    resume(effect)
  }
  socket.on("data", (chunk: Buffer) => {
    if (waiting === undefined) backlog.push(chunk)
    else wake(callback(socket, chunk))
  })
  socket.on("close", () => {
    closed = true
    if (waiting !== undefined) wake(Effect.void)
  })
  // Resets from the client are expected (e.g. at the end of a run); without a
  // listener Node would treat them as uncaught errors. 'close' follows.
  socket.on("error", () => socket.destroy())
  Effect.runFork(loop)
}

const server = Net.createServer((socket) => {
  accepted++
  socket.setNoDelay(true)
  serve(socket)
})

listenOnLoopback(server, 0, () => accepted)
