/**
 * Baseline of the memcached protocol benchmark (`npm run bench -- --protocol
 * memcached`): the ASCII memcached server a user would write by hand on plain
 * `node:net`, with what `memcslap` and the other libmemcached tools use:
 * `get`/`gets` (several keys), `set`/`add`/`replace` with their data block
 * and `noreply`, `delete`, `flush_all`, `version`, `quit`; expiry times as
 * memcached's doc/protocol.txt gives them (seconds, or a Unix time after 30
 * days). It frames itself: a partial command line or data block waits in a
 * buffer for the rest, and the replies to every command of one 'data' chunk
 * leave in one write. `--port N` (default 0: any). Prints `listening <port>`
 * once bound to 127.0.0.1, exits on SIGTERM.
 */
import * as Net from "node:net"
import { listenOnLoopback } from "./listen.ts"

/** Longest command line (memcached's own limit is 2048 bytes of key and arguments per line, roughly). */
const maxLine = 8192
/** Largest data block: memcached's default item size limit. */
const maxValue = 1024 * 1024
const CRLF = Buffer.from("\r\n")
const END = Buffer.from("END\r\n")
const STORED = Buffer.from("STORED\r\n")
const NOT_STORED = Buffer.from("NOT_STORED\r\n")
const DELETED = Buffer.from("DELETED\r\n")
const NOT_FOUND = Buffer.from("NOT_FOUND\r\n")
const ERROR = Buffer.from("ERROR\r\n")
const OK = Buffer.from("OK\r\n")

interface Item {
  readonly flags: string
  readonly value: Buffer
  readonly cas: number
  /** ms since the epoch, or 0: never. */
  readonly expires: number
}

const store = new Map<string, Item>()
let nextCas = 1

/** An expiry time of the protocol as ms since the epoch: seconds from now, a Unix time past 30 days, negative: gone. */
const expiry = (exptime: number): number =>
  exptime === 0 ? 0 : exptime < 0 ? 1 : exptime > 30 * 24 * 3600 ? exptime * 1000 : Date.now() + exptime * 1000

const lookup = (key: string): Item | undefined => {
  const item = store.get(key)
  if (item === undefined || item.expires === 0 || item.expires > Date.now()) return item
  store.delete(key)
  return undefined
}

class ClientError extends Error {}

const retrieve = (words: ReadonlyArray<string>, withCas: boolean, out: Array<Buffer>) => {
  for (let i = 1; i < words.length; i++) {
    const item = lookup(words[i]!)
    if (item === undefined) continue
    out.push(
      Buffer.from(`VALUE ${words[i]} ${item.flags} ${item.value.length}${withCas ? ` ${item.cas}` : ""}\r\n`),
      item.value,
      CRLF
    )
  }
  out.push(END)
}

/**
 * One command from `offset`: runs it, appending its reply to `out`, and
 * returns where the next starts, or -1 when the buffer ends before it does.
 * Returns -2 for `quit`.
 */
const step = (buffer: Buffer, offset: number, out: Array<Buffer>): number => {
  const lineEnd = buffer.indexOf(CRLF, offset)
  if (lineEnd < 0) {
    if (buffer.length - offset > maxLine) throw new ClientError("line too long")
    return -1
  }
  const words = buffer
    .toString("latin1", offset, lineEnd)
    .split(" ")
    .filter((word) => word !== "")
  const next = lineEnd + 2
  switch (words[0]) {
    case "get":
    case "gets":
      if (words.length < 2) throw new ClientError("no key")
      retrieve(words, words[0] === "gets", out)
      return next
    case "set":
    case "add":
    case "replace": {
      const [, key, flags, exptime, bytes, noreply] = words
      const length = Number(bytes)
      if (key === undefined || !/^\d+$/.test(flags ?? "") || !/^-?\d+$/.test(exptime ?? "")) {
        throw new ClientError("bad command line format")
      }
      if (!Number.isSafeInteger(length) || length < 0 || length > maxValue) throw new ClientError("bad data chunk")
      if (next + length + 2 > buffer.length) return -1
      if (buffer[next + length] !== 0x0d || buffer[next + length + 1] !== 0x0a) throw new ClientError("bad data chunk")
      const exists = lookup(key) !== undefined
      const stores = words[0] === "set" || (words[0] === "add" ? !exists : exists)
      if (stores) {
        // Copied: the data block is a view of the chunk, which the store must not keep alive.
        const value = Buffer.from(buffer.subarray(next, next + length))
        store.set(key, { flags: flags!, value, cas: nextCas++, expires: expiry(Number(exptime)) })
      }
      if (noreply !== "noreply") out.push(stores ? STORED : NOT_STORED)
      return next + length + 2
    }
    case "delete": {
      if (words[1] === undefined) throw new ClientError("bad command line format")
      const deleted = lookup(words[1]) !== undefined && store.delete(words[1])
      if (words[words.length - 1] !== "noreply") out.push(deleted ? DELETED : NOT_FOUND)
      return next
    }
    case "flush_all":
      store.clear()
      if (words[words.length - 1] !== "noreply") out.push(OK)
      return next
    case "version":
      out.push(Buffer.from("VERSION 1.6.0-raw-baseline\r\n"))
      return next
    case "quit":
      return -2
    default:
      out.push(ERROR)
      return next
  }
}

const portFlag = process.argv.indexOf("--port")
const port = portFlag < 0 ? 0 : Number(process.argv[portFlag + 1])

const server = Net.createServer((socket) => {
  socket.setNoDelay(true)
  let pending: Buffer | undefined
  socket.on("data", (chunk: Buffer) => {
    const buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    const replies: Array<Buffer> = []
    let offset = 0
    try {
      while (offset < buffer.length) {
        const next = step(buffer, offset, replies)
        if (next === -1) break
        if (next === -2) {
          socket.end(Buffer.concat(replies))
          return
        }
        offset = next
      }
    } catch (cause) {
      // As memcached does: the error, then the connection is closed (the rest of the stream cannot be framed).
      replies.push(Buffer.from(`CLIENT_ERROR ${(cause as Error).message}\r\n`))
      socket.end(Buffer.concat(replies))
      return
    }
    // What is left is the start of a command: kept (copied, so the chunk can go) until the rest arrives.
    pending = offset === buffer.length ? undefined : Buffer.from(buffer.subarray(offset))
    if (replies.length === 1) socket.write(replies[0]!)
    else if (replies.length > 1) socket.write(Buffer.concat(replies))
  })
  socket.on("error", () => socket.destroy())
})

listenOnLoopback(server, port)
