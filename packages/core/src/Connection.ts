/**
 * What the pool serves: a byte-stream connection (Go's `net.Conn`), as a
 * contract a runtime implements (`Transport`) and the Effect-level face that
 * callbacks use (`Connection`, built over a transport by `make`).
 *
 * A `Connection` has two faces. Callbacks use the Effect API (`read`, `write`,
 * `close`, `remoteAddress`). The pool's hot path, and anyone binding a new
 * runtime, uses its `Transport`: a small callback-level interface whose reads
 * are pulled (`poll` takes only what is already buffered) and whose wait
 * (`awaitReadable`) consumes nothing. Because a wait consumes nothing, it can be
 * cancelled at any moment without losing bytes, which is what lets `stop` close
 * idle connections at once while keeping every byte that arrived.
 *
 * `MemoryConnection` gives an in-memory transport and its client side, for
 * tests of the pool and of user callbacks.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import { connectionFailure } from "./internal/errors.ts"
import { TransportConnection } from "./internal/transportConnection.ts"
import type { ConnectionError } from "./PoolError.ts"

/**
 * Why `Transport.awaitReadable` called back: bytes are buffered, no bytes came
 * within the timeout, or no more bytes can come (`failure` says why).
 *
 * @category models
 * @since 0.1.0
 */
export type ReadyEvent = "readable" | "timeout" | "done"

/**
 * The callback-level contract a runtime implements to feed the pool.
 *
 * @category models
 * @since 0.1.0
 */
export interface Transport {
  /** The peer's address, for logs. */
  readonly remoteAddress: string
  /** The peer's host without the port (an IP address for TCP), for per-address limits. */
  readonly remoteHost: string
  /** Takes up to `maxBytes` of the bytes already buffered; `undefined` when none are. Never waits. */
  poll(maxBytes: number): Uint8Array | undefined
  /** True once no more bytes can arrive (peer closed, error, closed here); buffered bytes may remain. */
  readonly ended: boolean
  /**
   * Why no more bytes can arrive, once `ended`. Runtimes may build it on first
   * access, so hot paths test `ended` instead.
   */
  readonly failure: ConnectionError | undefined
  /**
   * Calls `onReady` once: when bytes are buffered or the transport `ended` (possibly
   * before returning), or after `timeoutMillis` (`Infinity` for never) without
   * either. Returns a function that cancels the wait. Consumes nothing.
   *
   * `now`, when given, is `performance.now()` as the caller read it just
   * before the call: the pool passes the reading that ended the last message,
   * so a transport timing its deadline on that clock need not read it again
   * (a clock read is a measurable share of a message's cost). A transport on
   * another clock ignores it. (The parameter since 0.2.0.)
   */
  awaitReadable(timeoutMillis: number, onReady: (event: ReadyEvent) => void, now?: number): () => void
  /**
   * Queues `data` for the peer. Returns `true` when the transport can take more
   * at once, `false` when it is full (wait with `awaitWritable` before writing
   * more), or the error that stopped it (nothing was queued then).
   */
  write(data: Uint8Array | string): boolean | ConnectionError
  /**
   * Calls `onReady` once the transport can take more writes, or with the error
   * that stopped it, or with a `Timeout` error when it could take nothing for
   * `timeoutMillis` (`Infinity` for never). Returns a function that cancels the wait.
   */
  awaitWritable(timeoutMillis: number, onReady: (error?: ConnectionError) => void): () => void
  /** Bytes written to the peer so far (queued ones included). */
  readonly bytesWritten: number
  /** Sends what is queued, then closes. Idempotent. */
  close(): void
  /** Closes at once, dropping what is queued (used when a drain times out). Idempotent. */
  abort(): void
  /**
   * Optional: holds the writes made until the current synchronous run of
   * JavaScript ends, then sends them as one write (Node: `socket.cork()`, and
   * `uncork` on `process.nextTick`). Calling it again before then changes
   * nothing. The pool corks when one chunk held several frames, so their
   * replies leave together.
   *
   * @since 0.2.0
   */
  cork?(): void
}

/**
 * A connection served by the pool and passed to the callback.
 *
 * @example
 * ```ts
 * import { type Connection, Framing, type PoolError, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * // A line protocol: answer PING, log and hang up on QUIT.
 * const reply = (conn: Connection.Connection, command: string) =>
 *   command === "QUIT"
 *     ? Effect.log(`${conn.remoteAddress} said goodbye`).pipe(Effect.andThen(conn.write("BYE\n")), Effect.andThen(conn.close))
 *     : conn.write(command === "PING" ? "PONG\n" : "ERROR unknown command\n")
 *
 * // A failed write (the peer went away) closes that connection only.
 * const callback: PoolManager.Callback<PoolError.ConnectionError> = (conn, line) =>
 *   reply(conn, new TextDecoder().decode(line))
 *
 * // Framed by lines: each message is one line without its "\n" or "\r\n", so
 * // "PING\nPING\n" in one write gets two PONGs, and a line split across
 * // segments is joined first. (Under the default Go rule a message is whatever
 * // arrived together, which is no way to carry a line protocol.)
 * const Pool = PoolManager.layer({ framing: Framing.lines({ maxLength: 1024 }) }, callback)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Connection {
  /** The peer's address, for logs. */
  readonly remoteAddress: string
  /**
   * The next chunk of at most `bufferSize` bytes; fails with `ConnectionError` once the peer closed, and (since
   * 0.2.0) with a `Timeout` one when no byte arrives within the deadline (the pool's `clientsDeadline` while it
   * serves the connection, none otherwise). Interruptible. Under a framing other than the Go rule, the framing owns the
   * stream: `read` returns bytes it has not taken yet, which come after the frames and the partial frame it holds
   * (those reach the callback as messages, or are dropped with the connection), so a protocol that needs more
   * bytes says so in its decoder rather than reading them.
   */
  readonly read: Effect.Effect<Uint8Array, ConnectionError>
  /**
   * Writes to the peer, waiting while the transport applies backpressure: at
   * most the deadline (the pool's `clientsDeadline` while it serves the
   * connection, as Go's `SetDeadline` covers writes too), then it fails with
   * a `Timeout` error.
   */
  readonly write: (data: Uint8Array | string) => Effect.Effect<void, ConnectionError>
  /** Flushes what was written, then closes. Idempotent. */
  readonly close: Effect.Effect<void>
  /**
   * Queues `data` for the peer at once, without waiting: the write of a
   * synchronous callback (`PoolManager.syncCallback`), which runs outside any
   * fiber. Returns `true` when the transport can take more, `false` when it is
   * full (the bytes are queued all the same; a callback that writes much more
   * should be an Effect callback, whose `write` waits), or the error that
   * stopped it (nothing was queued then).
   *
   * @since 0.2.0
   */
  readonly writeNow: (data: Uint8Array | string) => boolean | ConnectionError
  /**
   * Flushes what was written, then closes, at once: `close` for a synchronous
   * callback. Idempotent.
   *
   * @since 0.2.0
   */
  readonly closeNow: () => void
  /** The callback-level interface underneath, used by the pool. */
  readonly transport: Transport
}

/**
 * Options for `make`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Most bytes `read` returns at once (default 5120, the Go original's buffer size). */
  readonly bufferSize?: number | undefined
}

/**
 * The `ConnectionError` a transport reports. Closes are normal flow, so it is
 * built without a stack trace, which would cost more than the rest of a
 * connection's bookkeeping.
 *
 * @category constructors
 * @since 0.1.0
 */
export const failure: (reason: ConnectionError["reason"], remoteAddress: string, cause?: unknown) => ConnectionError =
  connectionFailure

/**
 * Builds a `Connection` over a `Transport`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (transport: Transport, options?: Options): Connection =>
  new TransportConnection(transport, options?.bufferSize ?? 5120)
