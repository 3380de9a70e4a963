/**
 * One request to the OK/ERROR server as a client makes it, directly or
 * through a balancer, optionally from another loopback address or with the
 * PROXY v1 header a balancer would send; and a tally of many such outcomes.
 */
import * as Net from "node:net"

/** How one request ended: `OK`, `ERROR_SERVER_BUSY`, or what went wrong. */
export type Outcome = "OK" | "BUSY" | `error: ${string}`

/**
 * One request as a client makes it: connect from `localAddress` to
 * 127.0.0.1:`port`, send `HI`,
 * read the reply, close. Never rejects. With `hold`, the connection stays
 * open after an `OK` (returned as `socket`) for the caller to close.
 */
export const request = (
  port: number,
  options: {
    readonly localAddress?: string
    readonly hold?: boolean
    readonly timeout?: number
    /** Send a PROXY v1 header first, as a balancer would (to reach a `--proxy-protocol` backend directly). */
    readonly proxyHeader?: boolean
  } = {}
): Promise<{ readonly outcome: Outcome; readonly socket: Net.Socket }> =>
  new Promise((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1", localAddress: options.localAddress ?? "127.0.0.1" })
    let text = ""
    let settled = false
    const finish = (outcome: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (!(options.hold === true && outcome === "OK")) socket.destroy()
      resolve({ outcome, socket })
    }
    const timer = setTimeout(() => finish(`error: no reply in ${options.timeout ?? 5000} ms`), options.timeout ?? 5000)
    socket.on("connect", () => {
      if (options.proxyHeader === true) {
        socket.write(`PROXY TCP4 ${socket.localAddress} 127.0.0.1 ${socket.localPort} ${port}\r\n`)
      }
      socket.write("HI")
    })
    socket.on("data", (chunk) => {
      text += chunk
      if (text === "OK") finish("OK")
      else if (text === "ERROR_SERVER_BUSY") finish("BUSY")
      else if (!("ERROR_SERVER_BUSY".startsWith(text) || text === "O")) finish(`error: reply ${JSON.stringify(text)}`)
    })
    socket.on("error", (error: NodeJS.ErrnoException) => finish(`error: ${error.code ?? error.message}`))
    socket.on("close", () => finish(`error: closed after ${JSON.stringify(text)}`))
  })

/** Counts outcomes by kind. */
export const tally = (outcomes: ReadonlyArray<Outcome>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
  return counts
}
