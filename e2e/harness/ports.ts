/**
 * Loopback ports for servers that cannot take port 0: a balancer's config
 * names its backends' ports before they start, and a backend restarted in
 * place must bind the same port again. Also the bounded wait for a port to
 * accept connections, for programs that print no "listening" line.
 */
import * as Net from "node:net"
import { sleep } from "./waits.ts"

/** `count` distinct free TCP ports on 127.0.0.1 below the ephemeral range (bound then released: free a moment ago). */
export const freePorts = async (count: number): Promise<Array<number>> => {
  // Below Linux's ephemeral range (32768 and up), so no outgoing connection of
  // HAProxy, nginx or a client can take a port between this check and the
  // moment a backend (re)binds it, as it does across a rolling restart.
  const listen = (port: number) =>
    new Promise<Net.Server | undefined>((resolve) => {
      const server = Net.createServer()
      server.once("error", () => resolve(undefined))
      server.listen(port, "127.0.0.1", () => resolve(server))
    })
  const servers: Array<Net.Server> = []
  let candidate = 20_000 + Math.floor(Math.random() * 12_000)
  for (let tries = 0; servers.length < count; tries++) {
    if (tries > 1_000) throw new Error("no free ports between 20000 and 32767 on 127.0.0.1")
    const server = await listen(candidate)
    if (server !== undefined) servers.push(server)
    candidate = candidate >= 32_767 ? 20_000 : candidate + 1
  }
  const ports = servers.map((server) => (server.address() as Net.AddressInfo).port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

/** Resolves once 127.0.0.1:`port` accepts connections; rejects after `timeout` ms with `details()`. */
export const waitForPort = async (port: number, details: () => string, timeout = 10_000): Promise<void> => {
  const started = Date.now()
  while (true) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (ok) return
    if (Date.now() - started > timeout) throw new Error(`nothing listens on ${port} after ${timeout} ms:\n${details()}`)
    await sleep(50)
  }
}
