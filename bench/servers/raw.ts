/**
 * Baseline benchmark server: plain `node:net`, one `OK` per 'data' chunk.
 * Prints `listening <port>` once bound to 127.0.0.1 (port 0), exits on SIGTERM.
 */
import * as Net from "node:net"

const OK = Buffer.from("OK")

const server = Net.createServer((socket) => {
  socket.setNoDelay(true)
  socket.on("data", () => socket.write(OK))
  // Resets from the client are expected (e.g. at the end of a run); without a
  // listener Node would treat them as uncaught errors.
  socket.on("error", () => socket.destroy())
})

server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("unexpected server address")
  process.stdout.write(`listening ${address.port}\n`)
})

process.on("SIGTERM", () => {
  server.close()
  process.exit(0)
})
