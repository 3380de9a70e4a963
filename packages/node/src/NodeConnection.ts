/**
 * A `node:net` socket as a pool `Connection`.
 *
 * This is written on `node:net` directly rather than on Effect's `Socket`,
 * whose `Reader.pull` takes what it returns and delivers it by resuming a
 * fiber. The pool's `Transport` waits for bytes without taking any
 * (`awaitReadable`), so the serve loop polls as much as its framing has room
 * for, when it frames it, and a wait can be cancelled with nothing in hand;
 * and a synchronous callback answers inside the `'data'` event below, outside
 * any fiber. Reads are still pulled with bounded buffering: bytes
 * arriving while somebody waits are handed over at once (in Node's `'data'`
 * event, without the extra turn a paused stream's `'readable'` event takes);
 * bytes nobody asked for are queued, and once a high-water mark of them is
 * queued the socket is paused, so the rest stay in the kernel and a client
 * that floods is held back by TCP instead of growing the server's memory. A
 * wait for bytes is one field, with no fiber, race or timer per read: the
 * deadlines of all connections share one timer (internal/deadlines.ts).
 *
 * Use `make` for sockets from your own `net.Server` (as the Go original's example
 * does), then `put` the result; `NodeTcpServer` does this for you.
 *
 * @since 0.1.0
 */

import { Buffer } from "node:buffer"
import type * as Net from "node:net"
// Imported rather than read from the global object, where Node defines them as
// accessors that cost a slow lookup on every use (this is the message path).
import { performance } from "node:perf_hooks"
import { nextTick } from "node:process"
import * as Connection from "@pool-manager/core/Connection"
import type * as PoolError from "@pool-manager/core/PoolError"
import * as Deadlines from "./internal/deadlines.ts"
import * as Linger from "./internal/linger.ts"

/**
 * Options for `make`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends Connection.Options {
  /**
   * How long a graceful `close` waits for queued bytes to reach the peer and for
   * the peer to close its side, before the socket is destroyed (default 5 seconds).
   */
  readonly lingerMillis?: number | undefined
  /** Disable Nagle's algorithm, as Go's net package does by default (default true). */
  readonly noDelay?: boolean | undefined
}

// The largest reply whose Buffer a connection keeps for the next write of it.
const reusableWriteBytes = 256

const peerGone = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT"])

const formatAddress = (socket: Net.Socket): string => {
  const host = socket.remoteAddress
  if (host === undefined) return "unix"
  return socket.remoteFamily === "IPv6" ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`
}

type Reason = PoolError.ConnectionError["reason"]

// What is left to send: Node's buffer, where a write stays whole until all of
// it reached the kernel, plus what libuv still holds of the one in flight,
// which shrinks as the peer reads (so a single large reply shows progress).
// A TLS socket's handle counts its clear text, so there only whole writes do.
const unsent = (socket: Net.Socket): number =>
  socket.writableLength + ((socket as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0)

// Listeners shared by every socket: each finds its transport through this
// property, so a connection costs one object instead of a closure per listener.
const owner = Symbol("@pool-manager/node/NodeConnection/transport")
type Owned = Net.Socket & { [owner]: SocketTransport }

function onData(this: Owned, chunk: Buffer) {
  this[owner].push(chunk)
}
function onEnd(this: Owned) {
  this[owner].end("Closed")
}
function onError(this: Owned, error: NodeJS.ErrnoException) {
  this[owner].end(error.code !== undefined && peerGone.has(error.code) ? "Closed" : "Error", error)
}
function onClose(this: Owned) {
  const transport = this[owner]
  transport.disarm()
  transport.end(transport.closing ? "LocalClosed" : "Closed")
}

/**
 * The `Transport` of a socket: one object per connection, its methods on the
 * prototype (a server holding 10,000 connections holds 10,000 of these).
 *
 * The deadline is checked lazily: a wait only records when it started, and
 * the transport waits in the process's heap of deadlines to be checked, which
 * puts it back for what is left of the current wait. Busy connections then
 * cost a clock read per message instead of a timer reschedule, and are
 * checked about once per deadline.
 */
class SocketTransport implements Connection.Transport, Deadlines.Deadline {
  readonly socket: Owned
  readonly lingerMillis: number
  // Bounds the linger after a graceful close: its server's (see internal/linger.ts), or none.
  readonly sweeper: Linger.Sweeper | undefined
  // The socket's readableHighWaterMark (a getter), read once: push tests it per chunk.
  readonly highWaterMark: number
  // Why no more bytes can come, once they can't. The error itself, and the
  // peer's address (a getpeername call), are built on first use: most
  // connections end without anybody asking for them.
  endReason: Reason | undefined = undefined
  address: string | undefined = undefined
  // The client named by a PROXY protocol header, when there was one.
  host: string | undefined = undefined
  endCause: unknown = undefined
  error: PoolError.ConnectionError | undefined = undefined
  closing = false
  // Bytes received and not yet polled: the first chunk, then any others.
  head: Buffer | undefined = undefined
  rest: Array<Buffer> | undefined = undefined
  queued = 0
  paused = false
  waiter: ((event: Connection.ReadyEvent) => void) | undefined = undefined
  // Its place in the heap of deadlines (Deadlines.Deadline).
  deadlineIndex = -1
  deadlineAt = Infinity
  waitMillis = Infinity
  waitStarted = 0
  corked = false
  // The last small Uint8Array written that is not a Buffer, and the Buffer
  // over its bytes that Node writes: a socket would wrap such an array in a
  // new Buffer on every write, and most servers write a few constant replies.
  // Large ones are not kept, so a connection never pins a big reply.
  lastArray: Uint8Array | undefined = undefined
  lastBuffer: Buffer | undefined = undefined
  // Sends what was written while corked, once the synchronous run that corked ends.
  readonly uncork = () => {
    this.corked = false
    this.socket.uncork()
  }
  // One wait at a time (the pool's, or a callback's `read`), so one canceller serves them all.
  readonly cancelWait = () => {
    this.waiter = undefined
  }

  constructor(socket: Net.Socket, options: Options | undefined, client: Client | undefined) {
    this.socket = socket as Owned
    this.socket[owner] = this
    // Asking once makes Node cache the peer's name on the socket (one
    // getpeername), so it can still be formatted after the socket is gone.
    if (socket.remoteAddress === undefined) this.address = "unix"
    if (client !== undefined) {
      this.address = client.remoteAddress
      this.host = client.remoteHost
    }
    this.lingerMillis = options?.lingerMillis ?? 5000
    this.sweeper = Linger.sweeperOf(options)
    this.highWaterMark = socket.readableHighWaterMark
    socket.on("data", onData)
    socket.on("end", onEnd)
    socket.on("error", onError)
    socket.on("close", onClose)
    if (options?.noDelay !== false) socket.setNoDelay(true)
  }

  get remoteAddress(): string {
    if (this.address === undefined) this.address = formatAddress(this.socket)
    return this.address
  }
  get remoteHost(): string {
    return this.host ?? this.socket.remoteAddress ?? "unix"
  }
  get ended(): boolean {
    return this.endReason !== undefined
  }
  get failure(): PoolError.ConnectionError | undefined {
    if (this.endReason !== undefined && this.error === undefined) {
      this.error = Connection.failure(this.endReason, this.remoteAddress, this.endCause)
    }
    return this.error
  }
  get bytesWritten(): number {
    return this.socket.bytesWritten
  }

  wake(event: Connection.ReadyEvent): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    waiter(event)
  }
  end(reason: Reason, cause?: unknown): void {
    if (this.endReason === undefined) {
      this.endReason = reason
      this.endCause = cause
    }
    this.wake("done")
  }
  // Its time in the heap of deadlines came: time out the current wait, or go back for what is left of it.
  checkDeadline(now: number): void {
    if (this.waiter === undefined || !Number.isFinite(this.waitMillis)) return
    const due = this.waitStarted + this.waitMillis
    if (due <= now) this.wake("timeout")
    else Deadlines.deadlines.schedule(this, due)
  }
  disarm(): void {
    Deadlines.deadlines.cancel(this)
  }

  push(chunk: Buffer): void {
    if (this.head === undefined) this.head = chunk
    else if (this.rest === undefined) this.rest = [chunk]
    else this.rest.push(chunk)
    this.queued += chunk.length
    this.wake("readable")
    // Nobody took them: stop reading past the high-water mark until somebody waits again.
    if (this.queued >= this.highWaterMark && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
  }

  poll(maxBytes: number): Uint8Array | undefined {
    const head = this.head
    if (head === undefined) return undefined
    if (head.length > maxBytes) {
      this.head = head.subarray(maxBytes)
      this.queued -= maxBytes
      return head.subarray(0, maxBytes)
    }
    this.head = this.rest === undefined || this.rest.length === 0 ? undefined : this.rest.shift()
    this.queued -= head.length
    return head
  }
  awaitReadable(
    timeoutMillis: number,
    onReady: (event: Connection.ReadyEvent) => void,
    startedAt?: number
  ): () => void {
    if (this.head !== undefined) {
      onReady("readable")
      return noop
    }
    if (this.endReason !== undefined) {
      onReady("done")
      return noop
    }
    if (this.paused) {
      this.paused = false
      this.socket.resume()
    }
    this.waiter = onReady
    this.waitMillis = timeoutMillis
    if (Number.isFinite(timeoutMillis)) {
      // The pool's reading when it has one (the same clock), else our own.
      const now = startedAt ?? performance.now()
      this.waitStarted = now
      // Nothing to do when it is due for a check no later than this wait's deadline.
      Deadlines.deadlines.schedule(this, now + timeoutMillis)
    }
    return this.cancelWait
  }
  write(data: Uint8Array | string): boolean | PoolError.ConnectionError {
    const socket = this.socket
    if (this.closing || socket.destroyed || socket.writableEnded) {
      return Connection.failure("LocalClosed", this.remoteAddress)
    }
    return socket.write(typeof data === "string" || Buffer.isBuffer(data) ? data : this.bufferOf(data))
  }
  // A Buffer over `data`'s bytes (a view, not a copy), the same one for the same small array.
  bufferOf(data: Uint8Array): Buffer {
    if (data === this.lastArray) return this.lastBuffer!
    const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    if (data.byteLength <= reusableWriteBytes) {
      this.lastArray = data
      this.lastBuffer = buffer
    }
    return buffer
  }
  awaitWritable(timeoutMillis: number, onReady: (error?: PoolError.ConnectionError) => void): () => void {
    const socket = this.socket
    if (this.endReason !== undefined && (this.closing || socket.destroyed)) {
      onReady(this.failure)
      return noop
    }
    if (!socket.writableNeedDrain) {
      onReady()
      return noop
    }
    // Backpressure: wait until Node's buffer drains, the socket dies, or the
    // peer has read nothing for timeoutMillis.
    let timer: NodeJS.Timeout | undefined
    const cancel = () => {
      socket.off("drain", drained)
      socket.off("close", closed)
      if (timer !== undefined) clearTimeout(timer)
    }
    const finish = (error?: PoolError.ConnectionError) => {
      cancel()
      onReady(error)
    }
    const drained = () => finish()
    const closed = () => finish(this.failure ?? Connection.failure("Closed", this.remoteAddress))
    socket.once("drain", drained)
    socket.once("close", closed)
    if (Number.isFinite(timeoutMillis)) {
      // A peer that reads slowly but reads is not timed out: each interval in
      // which less was left to send starts a new one.
      let queued = unsent(socket)
      const check = () => {
        const left = unsent(socket)
        if (left >= queued) return finish(Connection.failure("Timeout", this.remoteAddress))
        queued = left
        timer = setTimeout(check, timeoutMillis)
        timer.unref()
      }
      timer = setTimeout(check, timeoutMillis)
      timer.unref()
    }
    return cancel
  }
  cork(): void {
    if (this.corked) return
    this.corked = true
    this.socket.cork()
    nextTick(this.uncork)
  }
  close(): void {
    if (this.closing) return
    this.closing = true
    this.disarm()
    this.end("LocalClosed")
    const socket = this.socket
    if (socket.destroyed) return
    // Half-close after what is queued, then discard what the peer still sends
    // until it closes too: destroying a socket with unread bytes would send a
    // reset, which can make the peer drop our last reply unread.
    socket.off("data", onData)
    this.head = undefined
    this.rest = undefined
    this.queued = 0
    socket.end()
    // A peer that already closed its side needs no waiting for: the socket
    // closes itself once our side is flushed.
    if (socket.readableEnded) return
    socket.resume()
    Linger.linger(socket, this.lingerMillis, this.sweeper)
  }
  abort(): void {
    this.closing = true
    this.disarm()
    this.end("LocalClosed")
    this.socket.destroy()
  }
}

/**
 * The client a connection stands for when it is not the socket's peer: the
 * one a PROXY protocol header named (see `NodeProxyProtocol`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Client {
  /** Shown as the connection's `remoteAddress`, e.g. `192.0.2.1:5000`. */
  readonly remoteAddress: string
  /** Shown as its `remoteHost`, which per-address limits count. */
  readonly remoteHost: string
}

/**
 * The pool `Transport` of a socket. Takes ownership of reading from it.
 * `client`, when given, replaces the socket's peer as its address.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeTransport = (socket: Net.Socket, options?: Options, client?: Client): Connection.Transport =>
  new SocketTransport(socket, options, client)

const noop = () => {}

/**
 * A pool `Connection` over a `node:net` socket (or a `tls.TLSSocket`).
 *
 * @example
 * ```ts
 * import * as Net from "node:net"
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeConnection } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * // A listener of your own (NodeTcpServer is the ready-made one): each socket
 * // becomes a Connection for `put`; a refused one is answered and closed.
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.make({ maxWorkersCount: 10 }, (conn, _body, len) =>
 *     conn.write(len > 0 ? "OK" : "ERROR")
 *   )
 *   yield* manager.start
 *   const runFork = Effect.runForkWith(yield* Effect.context<never>())
 *   // allowHalfOpen: a client that half-closes after its message still gets the reply
 *   const listener = Net.createServer({ allowHalfOpen: true }, (socket) => {
 *     const conn = NodeConnection.make(socket, { bufferSize: 5120 })
 *     runFork(
 *       manager.put(conn).pipe(Effect.catch(() => conn.write("ERROR_SERVER_BUSY").pipe(Effect.ignore, Effect.andThen(conn.close))))
 *     )
 *   })
 *   yield* Effect.acquireRelease(
 *     Effect.sync(() => listener.listen(6263, "127.0.0.1")),
 *     () => Effect.sync(() => listener.close())
 *   )
 *   return yield* Effect.never
 * }).pipe(Effect.scoped)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (socket: Net.Socket, options?: Options, client?: Client): Connection.Connection =>
  Connection.make(makeTransport(socket, options, client), options)
