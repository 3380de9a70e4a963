/**
 * Baseline benchmark server: plain `node:net`, one `OK` per 'data' chunk
 * (with `--echo`, the chunk itself: the sweep's echo protocol).
 * Prints `listening <port>` once bound to 127.0.0.1 (port 0), exits on
 * SIGTERM after printing `accepted <n>` on stderr.
 */
import * as Net from "node:net"
import { listenOnLoopback } from "./listen.ts"

const OK = Buffer.from("OK")
const echo = process.argv.includes("--echo")
let accepted = 0

const server = Net.createServer((socket) => {
  accepted++
  socket.setNoDelay(true)
  if (echo) socket.on("data", (chunk) => socket.write(chunk))
  else socket.on("data", () => socket.write(OK))
  // Resets from the client are expected (e.g. at the end of a run); without a
  // listener Node would treat them as uncaught errors.
  socket.on("error", () => socket.destroy())
})

listenOnLoopback(server, 0, () => accepted)
