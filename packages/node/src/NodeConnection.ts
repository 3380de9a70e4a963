/**
 * A `node:net` socket as a pool `Connection`.
 *
 * This is written on `node:net` directly rather than on Effect's `Socket`,
 * because the pool's hot path needs pulled reads: the socket is never put in
 * flowing mode, so bytes nobody asked for stay in Node's buffer (at most its
 * high-water mark) and then in the kernel, and a client that floods is held
 * back by TCP instead of growing the server's memory. A wait for bytes is one
 * listener slot and one reusable timer per connection (`Timeout.refresh`), with
 * no fiber or race per read.
 *
 * Use `make` for sockets from your own `net.Server` (as the spec's example
 * does), then `put` the result; `NodeTcpServer` does this for you.
 *
 * @since 0.1.0
 */

import type * as Net from "node:net"
import * as Connection from "@pool-manager/core/Connection"
import type * as PoolError from "@pool-manager/core/PoolError"

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

const peerGone = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT"])

const formatAddress = (socket: Net.Socket): string => {
  const host = socket.remoteAddress
  if (host === undefined) return "unix"
  return socket.remoteFamily === "IPv6" ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`
}

/**
 * The pool `Transport` of a socket. Takes ownership of reading from it.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeTransport = (socket: Net.Socket, options?: Options): Connection.Transport => {
  const remoteAddress = formatAddress(socket)
  const lingerMillis = options?.lingerMillis ?? 5000
  // Why no more bytes can come, once they can't. The error itself is built on
  // first use: most connections end without anybody asking for it.
  let ended: PoolError.ConnectionError["reason"] | undefined
  let endCause: unknown
  let failure: PoolError.ConnectionError | undefined
  let closing = false
  let waiter: ((event: Connection.ReadyEvent) => void) | undefined
  // The deadline timer is armed lazily: a wait only records when it started,
  // and the timer, when it fires, re-arms itself for what is left of the
  // current wait. Busy connections then cost a clock read per message instead
  // of a timer reschedule, and a timer fires about once per deadline.
  let timer: NodeJS.Timeout | undefined
  let timerDue = Infinity
  let waitMillis = Infinity
  let waitStarted = 0

  const wake = (event: Connection.ReadyEvent) => {
    const current = waiter
    if (current === undefined) return
    waiter = undefined
    current(event)
  }
  const end = (reason: PoolError.ConnectionError["reason"], cause?: unknown) => {
    if (ended === undefined) {
      ended = reason
      endCause = cause
    }
    wake("done")
  }
  const getFailure = (): PoolError.ConnectionError | undefined => {
    if (ended !== undefined && failure === undefined) failure = Connection.failure(ended, remoteAddress, endCause)
    return failure
  }
  const onReadable = () => {
    if (socket.readableLength > 0) wake("readable")
  }
  const arm = (millis: number, now: number) => {
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(onTimer, millis)
    timer.unref()
    timerDue = now + millis
  }
  const onTimer = () => {
    timer = undefined
    timerDue = Infinity
    if (waiter === undefined || !Number.isFinite(waitMillis)) return
    const now = performance.now()
    const left = waitStarted + waitMillis - now
    if (left <= 0) wake("timeout")
    else arm(left, now)
  }
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    timerDue = Infinity
  }
  // One wait at a time (the pool's, or a callback's `read`), so one canceller serves them all.
  const cancelWait = () => {
    waiter = undefined
  }

  socket.on("readable", onReadable)
  socket.on("end", () => end("Closed"))
  socket.on("error", (error: NodeJS.ErrnoException) => {
    end(error.code !== undefined && peerGone.has(error.code) ? "Closed" : "Error", error)
  })
  socket.on("close", () => {
    disarm()
    end(closing ? "LocalClosed" : "Closed")
  })
  if (options?.noDelay !== false) socket.setNoDelay(true)

  return {
    remoteAddress,
    remoteHost: socket.remoteAddress ?? "unix",
    get failure() {
      return getFailure()
    },
    get bytesWritten() {
      return socket.bytesWritten
    },
    poll(maxBytes) {
      const buffered = socket.readableLength
      if (buffered === 0) return undefined
      // read() without a size takes everything and, unlike read(n), also makes
      // Node notice an end of stream that arrived with those bytes ('end').
      return (buffered <= maxBytes ? socket.read() : socket.read(maxBytes)) ?? undefined
    },
    awaitReadable(timeoutMillis, onReady) {
      if (socket.readableLength > 0) {
        onReady("readable")
        return noop
      }
      if (ended !== undefined) {
        onReady("done")
        return noop
      }
      waiter = onReady
      waitMillis = timeoutMillis
      if (Number.isFinite(timeoutMillis)) {
        const now = performance.now()
        waitStarted = now
        // An armed timer due no later than this wait's deadline will re-check it.
        if (timerDue > now + timeoutMillis) arm(timeoutMillis, now)
      }
      return cancelWait
    },
    write(data) {
      if (closing || socket.destroyed || socket.writableEnded) return Connection.failure("LocalClosed", remoteAddress)
      return socket.write(data)
    },
    awaitWritable(onReady) {
      if (ended !== undefined && (closing || socket.destroyed)) {
        onReady(getFailure())
        return noop
      }
      if (!socket.writableNeedDrain) {
        onReady()
        return noop
      }
      // Backpressure: wait until Node's buffer drains, or the socket dies.
      const onDrain = () => {
        socket.off("close", onClose)
        onReady()
      }
      const onClose = () => {
        socket.off("drain", onDrain)
        onReady(getFailure() ?? Connection.failure("Closed", remoteAddress))
      }
      socket.once("drain", onDrain)
      socket.once("close", onClose)
      return () => {
        socket.off("drain", onDrain)
        socket.off("close", onClose)
      }
    },
    close() {
      if (closing) return
      closing = true
      disarm()
      end("LocalClosed")
      if (socket.destroyed) return
      // Half-close after what is queued, then discard what the peer still sends
      // until it closes too: destroying a socket with unread bytes would send a
      // reset, which can make the peer drop our last reply unread.
      socket.off("readable", onReadable)
      socket.end()
      socket.resume()
      linger(socket, lingerMillis)
    },
    abort() {
      closing = true
      disarm()
      end("LocalClosed")
      socket.destroy()
    }
  }
}

const noop = () => {}

// Sockets closing gracefully, with the time they must be destroyed by. One
// sweeper timer serves them all instead of a timer per closed connection.
const lingering = new Map<Net.Socket, number>()
let sweeper: NodeJS.Timeout | undefined

const sweep = () => {
  const now = performance.now()
  for (const [socket, due] of lingering) {
    if (due <= now) {
      lingering.delete(socket)
      socket.destroy()
    }
  }
  if (lingering.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper)
    sweeper = undefined
  }
}

const forget = function (this: Net.Socket) {
  lingering.delete(this)
}

const linger = (socket: Net.Socket, millis: number) => {
  lingering.set(socket, performance.now() + millis)
  socket.once("close", forget)
  if (sweeper === undefined) {
    // Destroyed between `millis` and `millis` + 250 ms after the close began.
    sweeper = setInterval(sweep, 250)
    sweeper.unref()
  }
}

/**
 * A pool `Connection` over a `node:net` socket (or a `tls.TLSSocket`).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (socket: Net.Socket, options?: Options): Connection.Connection =>
  Connection.make(makeTransport(socket, options), options)
