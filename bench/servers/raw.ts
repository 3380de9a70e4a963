/**
 * Baseline benchmark server: plain `node:net`, one `OK` per 'data' chunk
 * (with `--echo`, the chunk itself: the sweep's echo protocol).
 * Prints `listening <port>` once bound to 127.0.0.1 (port 0), exits on
 * SIGTERM after printing `accepted <n>` on stderr.
 */
import { writeSync } from "node:fs"
import * as Net from "node:net"

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

server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("unexpected server address")
  process.stdout.write(`listening ${address.port}\n`)
})

// Written synchronously, then exit: once in CI this server printed `accepted`
// and was still up 30 s later when it waited for the write's callback.
process.on("SIGTERM", () => {
  server.close()
  writeSync(2, `accepted ${accepted}\n`)
  process.exit(0)
})
