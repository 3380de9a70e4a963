/**
 * Baseline of the Redis protocol benchmark (`npm run bench -- --protocol
 * redis`): the RESP2 server a user would write by hand on plain `node:net`,
 * answering the commands the workload sends (`PING`, `SET`, `GET`, `INCR`,
 * `MSET`, and the `CONFIG GET` that `redis-benchmark` asks first), in RESP
 * arrays or inline. It frames itself: a partial command waits in a buffer for
 * the rest, and the replies to every command of one 'data' chunk leave in one
 * write. `--port N` (default 0: any). Prints `listening <port>` once bound to
 * 127.0.0.1, exits on SIGTERM.
 */
import * as Net from "node:net"
import { listenOnLoopback } from "./listen.ts"

/** A command larger than this closes the connection, so a bad length cannot make the server buffer without bound. */
const maxPending = 64 * 1024 * 1024
const CRLF = Buffer.from("\r\n")
const OK = Buffer.from("+OK\r\n")
const PONG = Buffer.from("+PONG\r\n")
const NIL = Buffer.from("$-1\r\n")

class ProtocolError extends Error {}

const error = (message: string) => Buffer.from(`-ERR ${message}\r\n`)
const bulk = (value: Buffer, out: Array<Buffer>) => {
  out.push(Buffer.from(`$${value.length}\r\n`), value, CRLF)
}

const store = new Map<string, Buffer>()

/** CONFIG GET's answers: what redis-benchmark asks, as a server without persistence says. */
const config: Record<string, string> = { save: "", appendonly: "no" }

const run = (args: ReadonlyArray<Buffer>, out: Array<Buffer>): void => {
  const name = args[0]!.toString("latin1").toUpperCase()
  const arity = (n: number) => {
    if (args.length === n) return true
    out.push(error(`wrong number of arguments for '${name.toLowerCase()}' command`))
    return false
  }
  switch (name) {
    case "PING":
      if (args.length === 1) out.push(PONG)
      else if (arity(2)) bulk(args[1]!, out)
      return
    case "SET":
      // Copied: the argument is a view of the chunk, which the store must not keep alive.
      if (arity(3)) {
        store.set(args[1]!.toString("latin1"), Buffer.from(args[2]!))
        out.push(OK)
      }
      return
    case "GET": {
      if (!arity(2)) return
      const value = store.get(args[1]!.toString("latin1"))
      if (value === undefined) out.push(NIL)
      else bulk(value, out)
      return
    }
    case "INCR": {
      if (!arity(2)) return
      const key = args[1]!.toString("latin1")
      const text = store.get(key)?.toString("latin1") ?? "0"
      const n = /^-?\d{1,16}$/.test(text) ? Number(text) : Number.NaN
      if (!Number.isSafeInteger(n + 1)) {
        out.push(error("value is not an integer or out of range"))
        return
      }
      store.set(key, Buffer.from(String(n + 1)))
      out.push(Buffer.from(`:${n + 1}\r\n`))
      return
    }
    case "MSET":
      if (args.length < 3 || args.length % 2 === 0) {
        out.push(error("wrong number of arguments for 'mset' command"))
        return
      }
      for (let i = 1; i < args.length; i += 2) store.set(args[i]!.toString("latin1"), Buffer.from(args[i + 1]!))
      out.push(OK)
      return
    case "CONFIG": {
      if (args.length !== 3 || args[1]!.toString("latin1").toUpperCase() !== "GET") {
        out.push(error("only CONFIG GET <parameter> is known here"))
        return
      }
      const parameter = args[2]!.toString("latin1").toLowerCase()
      const value = config[parameter]
      if (value === undefined) out.push(Buffer.from("*0\r\n"))
      else {
        out.push(Buffer.from("*2\r\n"))
        bulk(Buffer.from(parameter), out)
        bulk(Buffer.from(value), out)
      }
      return
    }
    default:
      out.push(error(`unknown command '${args[0]!.toString("latin1")}'`))
  }
}

/**
 * Where the CRLF that ends the header at `from` is (a `*N` or `$N` line, a few bytes), or -1 if it has not arrived:
 * a byte loop, cheaper than `indexOf` for a distance this short.
 */
const headerEnd = (buffer: Buffer, from: number): number => {
  for (let i = from; i < buffer.length - 1; i++) {
    if (buffer[i] === 0x0d) {
      if (buffer[i + 1] !== 0x0a) throw new ProtocolError("expected LF after CR")
      return i
    }
  }
  return -1
}

/** The decimal integer from `start` to `end` (digits, maybe a leading '-'), or a ProtocolError. */
const integer = (buffer: Buffer, start: number, end: number): number => {
  const negative = buffer[start] === 0x2d
  let n = 0
  for (let i = negative ? start + 1 : start; i < end; i++) {
    const digit = buffer[i]! - 0x30
    if (digit < 0 || digit > 9 || i - start > 15) throw new ProtocolError("invalid length")
    n = n * 10 + digit
  }
  if (end === start + (negative ? 1 : 0)) throw new ProtocolError("invalid length")
  return negative ? -n : n
}

/**
 * One command from `offset`: its arguments (views of `buffer`) and where the
 * next one starts, or undefined when the buffer ends before it does.
 */
const parse = (buffer: Buffer, offset: number): { args: Array<Buffer>; next: number } | undefined => {
  if (buffer[offset] !== 0x2a /* '*' */) {
    // An inline command: words separated by spaces, up to the line's end.
    const lineEnd = buffer.indexOf(CRLF, offset)
    if (lineEnd < 0) return undefined
    const words = buffer
      .toString("latin1", offset, lineEnd)
      .split(" ")
      .filter((word) => word !== "")
    return { args: words.map((word) => Buffer.from(word, "latin1")), next: lineEnd + 2 }
  }
  const countEnd = headerEnd(buffer, offset + 1)
  if (countEnd < 0) return undefined
  const count = integer(buffer, offset + 1, countEnd)
  if (count < 1 || count > 1024 * 1024) throw new ProtocolError("invalid multibulk length")
  const args: Array<Buffer> = []
  let at = countEnd + 2
  for (let i = 0; i < count; i++) {
    if (at >= buffer.length) return undefined
    if (buffer[at] !== 0x24 /* '$' */) {
      throw new ProtocolError(`expected '$', got '${String.fromCharCode(buffer[at]!)}'`)
    }
    const lengthEnd = headerEnd(buffer, at + 1)
    if (lengthEnd < 0) return undefined
    const length = integer(buffer, at + 1, lengthEnd)
    if (length < 0 || length > maxPending) throw new ProtocolError("invalid bulk length")
    const start = lengthEnd + 2
    if (start + length + 2 > buffer.length) return undefined
    args.push(buffer.subarray(start, start + length))
    at = start + length + 2
  }
  return { args, next: at }
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
        const command = parse(buffer, offset)
        if (command === undefined) break
        offset = command.next
        if (command.args.length > 0) run(command.args, replies)
      }
    } catch (cause) {
      replies.push(error(`Protocol error: ${(cause as Error).message}`))
      socket.end(Buffer.concat(replies))
      return
    }
    // What is left is the start of a command: kept (copied, so the chunk can go) until the rest arrives.
    pending = offset === buffer.length ? undefined : Buffer.from(buffer.subarray(offset))
    if (pending !== undefined && pending.length > maxPending) {
      replies.push(error("Protocol error: command too large"))
      socket.end(Buffer.concat(replies))
      return
    }
    if (replies.length === 1) socket.write(replies[0]!)
    else if (replies.length > 1) socket.write(Buffer.concat(replies))
  })
  socket.on("error", () => socket.destroy())
})

listenOnLoopback(server, port)
