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
import * as PoolError from "@pool-manager/core/PoolError"

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
  let failure: PoolError.ConnectionError | undefined
  let closing = false
  let waiter: ((event: Connection.ReadyEvent) => void) | undefined
  let timer: NodeJS.Timeout | undefined
  let timerMillis = -1

  const wake = (event: Connection.ReadyEvent) => {
    const current = waiter
    if (current === undefined) return
    waiter = undefined
    current(event)
  }
  const fail = (error: PoolError.ConnectionError) => {
    failure ??= error
    wake("done")
  }
  const onReadable = () => {
    if (socket.readableLength > 0) wake("readable")
  }
  const onTimeout = () => wake("timeout")

  socket.on("readable", onReadable)
  socket.on("end", () => fail(new PoolError.ConnectionError({ reason: "Closed", remoteAddress })))
  socket.on("error", (error: NodeJS.ErrnoException) => {
    const reason = error.code !== undefined && peerGone.has(error.code) ? "Closed" : "Error"
    fail(new PoolError.ConnectionError({ reason, remoteAddress, cause: error }))
  })
  socket.on("close", () => {
    if (timer !== undefined) clearTimeout(timer)
    fail(new PoolError.ConnectionError({ reason: closing ? "LocalClosed" : "Closed", remoteAddress }))
  })
  if (options?.noDelay !== false) socket.setNoDelay(true)

  return {
    remoteAddress,
    remoteHost: socket.remoteAddress ?? "unix",
    get failure() {
      return failure
    },
    get bytesWritten() {
      return socket.bytesWritten
    },
    poll(maxBytes) {
      const buffered = socket.readableLength
      if (buffered === 0) return undefined
      return socket.read(Math.min(buffered, maxBytes)) ?? undefined
    },
    awaitReadable(timeoutMillis, onReady) {
      if (socket.readableLength > 0) {
        onReady("readable")
        return noop
      }
      // read(0) makes Node notice an end of stream that arrived with the last
      // bytes taken, and restarts reading from the kernel if it had stopped.
      if (failure === undefined) socket.read(0)
      if (failure !== undefined) {
        onReady("done")
        return noop
      }
      const current = (event: Connection.ReadyEvent) => onReady(event)
      waiter = current
      if (Number.isFinite(timeoutMillis)) {
        if (timer !== undefined && timerMillis === timeoutMillis) {
          timer.refresh()
        } else {
          if (timer !== undefined) clearTimeout(timer)
          timer = setTimeout(onTimeout, timeoutMillis)
          timer.unref()
          timerMillis = timeoutMillis
        }
      }
      return () => {
        if (waiter === current) waiter = undefined
      }
    },
    write(data, onWritten) {
      if (closing || socket.destroyed || socket.writableEnded) {
        return onWritten(new PoolError.ConnectionError({ reason: "LocalClosed", remoteAddress }))
      }
      if (socket.write(data)) return onWritten()
      // Backpressure: wait until Node's buffer drains, or the socket dies.
      const onDrain = () => {
        socket.off("close", onClose)
        onWritten()
      }
      const onClose = () => {
        socket.off("drain", onDrain)
        onWritten(failure ?? new PoolError.ConnectionError({ reason: "Closed", remoteAddress }))
      }
      socket.once("drain", onDrain)
      socket.once("close", onClose)
    },
    close() {
      if (closing) return
      closing = true
      if (timer !== undefined) clearTimeout(timer)
      fail(new PoolError.ConnectionError({ reason: "LocalClosed", remoteAddress }))
      if (socket.destroyed) return
      // Half-close after what is queued, then discard what the peer still sends
      // until it closes too: destroying a socket with unread bytes would send a
      // reset, which can make the peer drop our last reply unread.
      socket.off("readable", onReadable)
      socket.end()
      socket.resume()
      const linger = setTimeout(() => socket.destroy(), lingerMillis)
      linger.unref()
      socket.once("close", () => clearTimeout(linger))
    },
    abort() {
      closing = true
      if (timer !== undefined) clearTimeout(timer)
      fail(new PoolError.ConnectionError({ reason: "LocalClosed", remoteAddress }))
      socket.destroy()
    }
  }
}

const noop = () => {}

/**
 * A pool `Connection` over a `node:net` socket (or a `tls.TLSSocket`).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (socket: Net.Socket, options?: Options): Connection.Connection =>
  Connection.make(makeTransport(socket, options), options)
