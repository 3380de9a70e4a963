/**
 * The floor's connection loop (BENCHMARKS.md, "The floor"): one fiber per
 * connection, resumed once per 'data' chunk through `Effect.callback` with the
 * answer's effect, an Effect callback `Effect.sync(() => socket.write(OK))`
 * (with `echo`, the chunk itself). Nothing else: no pool, no framing, no
 * counters, no deadline. Used by the floor server (floor.ts) and by the
 * socket-less measurement of the message path (bench/messagePath.ts), so both
 * measure the same loop.
 */
import * as Effect from "effect/Effect"

const OK = Buffer.from("OK")

/** What the loop uses of a socket: a `node:net` socket, or a stand-in. */
export interface FloorSocket {
  on(event: "data", listener: (chunk: Buffer) => void): unknown
  on(event: "close" | "error", listener: () => void): unknown
  write(data: Buffer): unknown
  destroy(): unknown
}

// What a user's Effect callback is: a fresh effect per message, run by the connection's fiber.
const callback = (socket: FloorSocket, chunk: Buffer, echo: boolean): Effect.Effect<void> =>
  Effect.sync(() => {
    socket.write(echo ? chunk : OK)
  })

/** Serves `socket` with one fiber until it closes: `OK` per chunk, or the chunk with `echo`. */
export const serveFloor = (socket: FloorSocket, echo: boolean): void => {
  let waiting: ((effect: Effect.Effect<void>) => void) | undefined
  // Chunks that arrived while the fiber was not waiting: the run loop yields to
  // the event loop now and then, and a large echo arrives in several chunks.
  // Not a framing: each chunk is still one message, answered as it is.
  const backlog: Array<Buffer> = []
  let closed = false

  // One parameter and no canceller: Effect pushes no finalizer per wait.
  const next = Effect.callback<void>((resume) => {
    const chunk = backlog.shift()
    if (chunk !== undefined) resume(callback(socket, chunk, echo))
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
    else wake(callback(socket, chunk, echo))
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
