/**
 * The socket side of `NodeProxyProtocol`'s gate: who is trusted (a
 * `BlockList` of CIDRs), and reading a header from a socket under a timeout,
 * handing back the socket paused with the bytes after the header put back.
 */
import * as Net from "node:net"
import type { Header } from "../NodeProxyProtocol.ts"
import * as internal from "./proxyProtocol.ts"

/** How reading a header ended: the header, or why the connection must be closed. */
export type Outcome =
  | { readonly _tag: "Header"; readonly header: Header }
  | { readonly _tag: "Rejected"; readonly reason: internal.Problem | "timeout" | "closed"; readonly detail: string }

// What a trusted proxy entry must be, for the messages that refuse one.
export const expectedEntry = "an address or CIDR such as 10.0.0.0/8, 192.0.2.7 or fd00::/8"

// The entries as a BlockList, or the first entry that is not an address or CIDR.
export const blockList = (entries: ReadonlyArray<string>): Net.BlockList | string => {
  const list = new Net.BlockList()
  for (const entry of entries) {
    const [address = "", prefix, ...extra] = entry.trim().split("/")
    const family = Net.isIPv4(address) ? "ipv4" : Net.isIPv6(address) ? "ipv6" : undefined
    const max = family === "ipv4" ? 32 : 128
    const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN
    if (family === undefined || extra.length > 0 || !(bits >= 0 && bits <= max)) return entry
    list.addSubnet(address, bits, family)
  }
  return list
}

/**
 * Reads the header at the start of `socket`'s bytes, then calls `done` once:
 * with the header (the socket paused, holding what followed it), or with why
 * there is none (the caller closes the socket).
 */
export const readHeader = (
  socket: Net.Socket,
  timeoutMillis: number,
  maxHeaderBytes: number,
  done: (outcome: Outcome) => void
): void => {
  let buffered: Buffer = Buffer.alloc(0)
  const finish = (outcome: Outcome) => {
    clearTimeout(timer)
    socket.off("data", onData)
    socket.off("end", onEnd)
    socket.off("close", onEnd)
    socket.off("error", ignore)
    done(outcome)
  }
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const result = internal.parse(buffered, maxHeaderBytes)
    if (result._tag === "Incomplete") return
    if (result._tag === "Invalid") return finish({ _tag: "Rejected", reason: result.problem, detail: result.detail })
    socket.pause()
    if (result.header.length < buffered.length) socket.unshift(buffered.subarray(result.header.length))
    finish({ _tag: "Header", header: result.header })
  }
  const onEnd = () => finish({ _tag: "Rejected", reason: "closed", detail: "the peer closed before a complete header" })
  const timer = setTimeout(
    () => finish({ _tag: "Rejected", reason: "timeout", detail: `no complete header within ${timeoutMillis} ms` }),
    timeoutMillis
  )
  timer.unref()
  socket.on("error", ignore)
  socket.on("data", onData)
  socket.once("end", onEnd)
  socket.once("close", onEnd)
}

const ignore = () => {}
