/**
 * The floor of an Effect-callback server: the least such a design can do per
 * message, as an anchor for the pool's cost (BENCHMARKS.md, "The floor").
 * Plain `node:net`, each socket served by the floor's loop (floorLoop.ts: one
 * fiber per connection, resumed once per 'data' chunk with an Effect callback
 * writing `OK`, with `--echo` the chunk itself), the same replies as raw.ts
 * and pool.ts. With `--mixed`, a short program of other effects runs first
 * (mixedEffects.ts), so that Effect's run loop has seen what every real
 * Effect program's has. Prints `listening <port>` once bound to 127.0.0.1 (port 0),
 * exits on SIGTERM after printing `accepted <n>` on stderr.
 */
import * as Net from "node:net"
import { serveFloor } from "./floorLoop.ts"
import { listenOnLoopback } from "./listen.ts"
import { runMixedEffects } from "./mixedEffects.ts"

const echo = process.argv.includes("--echo")
let accepted = 0

const server = Net.createServer((socket) => {
  accepted++
  socket.setNoDelay(true)
  serveFloor(socket, echo)
})

// `--mixed`: first run other effects, as every real Effect program does (mixedEffects.ts).
if (process.argv.includes("--mixed")) await runMixedEffects()
listenOnLoopback(server, 0, () => accepted)
