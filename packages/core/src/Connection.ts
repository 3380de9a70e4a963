/**
 * What the pool serves: a byte-stream connection (the spec's `net.Conn`).
 *
 * A `Connection` has two faces. Callbacks use the Effect API (`read`, `write`,
 * `close`, `remoteAddress`). The pool's hot path, and anyone binding a new
 * runtime, uses its `Transport`: a small callback-level interface whose reads
 * are pulled (`poll` takes only what is already buffered) and whose wait
 * (`awaitReadable`) consumes nothing. Because a wait consumes nothing, it can be
 * cancelled at any moment without losing bytes, which is what lets `stop` close
 * idle connections at once while keeping every byte that arrived.
 *
 * `makeMemory` gives an in-memory connection and its client side, for tests of
 * the pool and of user callbacks. Its deadline timer runs on Effect's `Clock`,
 * so `TestClock` drives it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { withoutStack } from "./internal/errors.ts"
import { ConnectionError } from "./PoolError.ts"

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
   */
  awaitReadable(timeoutMillis: number, onReady: (event: ReadyEvent) => void): () => void
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
}

/**
 * A connection served by the pool and passed to the callback.
 *
 * @category models
 * @since 0.1.0
 */
export interface Connection {
  /** The peer's address, for logs. */
  readonly remoteAddress: string
  /** The next chunk of at most `bufferSize` bytes; fails with `ConnectionError` once the peer closed. Interruptible. */
  readonly read: Effect.Effect<Uint8Array, ConnectionError>
  /** Writes to the peer, waiting while the transport applies backpressure. */
  readonly write: (data: Uint8Array | string) => Effect.Effect<void, ConnectionError>
  /** Flushes what was written, then closes. Idempotent. */
  readonly close: Effect.Effect<void>
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
  /** Most bytes `read` returns at once (default 5120, the spec's buffer size). */
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
export const failure = (reason: ConnectionError["reason"], remoteAddress: string, cause?: unknown): ConnectionError =>
  withoutStack(
    () => new ConnectionError(cause === undefined ? { reason, remoteAddress } : { reason, remoteAddress, cause })
  )

// A write of the same small payload (an `OK`, an `ERROR`) reuses its effect:
// effects are values, and most servers answer with a few constant replies.
// Larger payloads are not kept, so a connection never pins a big buffer.
const reusableWriteBytes = 256

/**
 * The `Connection` `make` returns: one object per connection, its effects
 * built when first used (most callbacks never `read`), so holding 10,000
 * connections costs 10,000 small objects.
 */
class TransportConnection implements Connection {
  readonly transport: Transport
  readonly bufferSize: number
  private readEffect: Effect.Effect<Uint8Array, ConnectionError> | undefined = undefined
  private drainedEffect: Effect.Effect<void, ConnectionError> | undefined = undefined
  private closeEffect: Effect.Effect<void> | undefined = undefined
  private lastData: Uint8Array | string | undefined = undefined
  private lastWrite: Effect.Effect<void, ConnectionError> | undefined = undefined
  /** How long a write may wait for a full transport; the pool sets it from `clientsDeadline`. */
  writeTimeoutMillis = Infinity

  constructor(transport: Transport, bufferSize: number) {
    this.transport = transport
    this.bufferSize = bufferSize
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress
  }
  get read(): Effect.Effect<Uint8Array, ConnectionError> {
    if (this.readEffect === undefined) this.readEffect = makeRead(this.transport, this.bufferSize)
    return this.readEffect
  }
  get close(): Effect.Effect<void> {
    if (this.closeEffect === undefined) this.closeEffect = Effect.sync(() => this.transport.close())
    return this.closeEffect
  }
  // A property, not a method: callbacks pass `conn.write` around unbound.
  readonly write = (data: Uint8Array | string): Effect.Effect<void, ConnectionError> => {
    if (data === this.lastData) return this.lastWrite!
    // Most writes are taken at once: only a full transport costs a callback.
    const effect = Effect.suspend(() => {
      const written = this.transport.write(data)
      if (written === true) return Effect.void
      if (written !== false) return Effect.fail(written)
      if (this.drainedEffect === undefined) this.drainedEffect = makeDrained(this)
      return this.drainedEffect
    })
    if (data.length <= reusableWriteBytes) {
      this.lastData = data
      this.lastWrite = effect
    }
    return effect
  }
}

const makeDrained = (connection: TransportConnection): Effect.Effect<void, ConnectionError> =>
  Effect.callback<void, ConnectionError>((resume) => {
    const cancel = connection.transport.awaitWritable(connection.writeTimeoutMillis, (error) =>
      resume(error === undefined ? Effect.void : Effect.fail(error))
    )
    return Effect.sync(cancel)
  })

/**
 * Sets how long `connection`'s writes may wait for its transport to take more
 * (connections `make` built; others keep their own rule).
 *
 * @internal
 */
export const setWriteTimeout = (connection: Connection, millis: number): void => {
  if (connection instanceof TransportConnection) connection.writeTimeoutMillis = millis
}

const makeRead = (transport: Transport, bufferSize: number): Effect.Effect<Uint8Array, ConnectionError> =>
  Effect.callback<Uint8Array, ConnectionError>((resume) => {
    let cancel: (() => void) | undefined
    const attempt = (): boolean => {
      const chunk = transport.poll(bufferSize)
      if (chunk !== undefined) {
        resume(Effect.succeed(chunk))
        return true
      }
      if (transport.ended) {
        resume(Effect.fail(transport.failure ?? failure("Closed", transport.remoteAddress)))
        return true
      }
      return false
    }
    if (attempt()) return
    const wait = () => {
      cancel = transport.awaitReadable(Infinity, () => {
        cancel = undefined
        if (!attempt()) wait()
      })
    }
    wait()
    return Effect.sync(() => cancel?.())
  })

/**
 * Builds a `Connection` over a `Transport`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (transport: Transport, options?: Options): Connection =>
  new TransportConnection(transport, options?.bufferSize ?? 5120)

/**
 * The client side of a memory connection.
 *
 * @category models
 * @since 0.1.0
 */
export interface MemoryClient {
  /** Sends bytes to the server side. Ignored once either side closed. */
  readonly send: (data: Uint8Array | string) => Effect.Effect<void>
  /** Closes the client's sending side (like a TCP FIN); buffered bytes stay readable. */
  readonly end: Effect.Effect<void>
  /** Drops the connection (like a TCP reset): the server side's reads end and its writes fail. */
  readonly reset: Effect.Effect<void>
  /** The next bytes the server wrote (all of them since the last `receive`); waits for some, fails once closed. */
  readonly receive: Effect.Effect<Uint8Array, ConnectionError>
  /** The next bytes the server wrote, decoded as UTF-8. */
  readonly receiveText: Effect.Effect<string, ConnectionError>
  /** Completes when the server side closed the connection. */
  readonly closed: Effect.Effect<void>
  /** Whether the server side has closed the connection. */
  readonly isClosed: Effect.Effect<boolean>
}

/**
 * Options for `makeMemory`.
 *
 * @category models
 * @since 0.1.0
 */
export interface MemoryOptions extends Options {
  /** Defaults to `memory`. */
  readonly remoteAddress?: string | undefined
  /** Defaults to `remoteAddress`. */
  readonly remoteHost?: string | undefined
  /**
   * Bytes the server side may have written that the client has not received
   * before `write` reports the transport full, as a socket's buffers would
   * (default: unlimited).
   */
  readonly writeBufferBytes?: number | undefined
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** @internal */
export const toBytes = (data: Uint8Array | string): Uint8Array =>
  typeof data === "string" ? encoder.encode(data) : data

/** @internal */
export const concat = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * An in-memory connection and its client side. The server side's deadline
 * timer sleeps on the `Clock` of the context this runs in, so under
 * `it.effect` it follows `TestClock`.
 *
 * @example
 * ```ts
 * import { Connection, type PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * // The callback under test: answers each message in upper case.
 * const shout: PoolManager.Callback = (conn, body) =>
 *   Effect.orDie(conn.write(new TextDecoder().decode(body).toUpperCase()))
 *
 * // With @effect/vitest this is the body of an `it.effect` test.
 * const test = Effect.gen(function* () {
 *   const { client, connection } = yield* Connection.makeMemory({ remoteAddress: "10.0.0.7:51000" })
 *   yield* client.send("hello")
 *   const body = yield* connection.read
 *   yield* shout(connection, body, body.length)
 *   const reply = yield* client.receiveText // "HELLO"
 *   yield* connection.close
 *   yield* client.closed
 *   return reply
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeMemory = (
  options?: MemoryOptions
): Effect.Effect<{ readonly connection: Connection; readonly client: MemoryClient }> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const clock = yield* Clock.Clock
    const remoteAddress = options?.remoteAddress ?? "memory"
    // client -> server
    const inbound: Array<Uint8Array> = []
    let inboundOffset = 0
    let clientEnded = false
    let peerReset = false
    // server -> client
    let outbound: Array<Uint8Array> = []
    let outboundBytes = 0
    let bytesWritten = 0
    let closed = false
    let problem: ConnectionError | undefined
    const closedSignal = yield* Deferred.make<void>()
    let serverWaiter: ((event: ReadyEvent) => void) | undefined
    let clientWaiter: (() => void) | undefined
    const writeBufferBytes = options?.writeBufferBytes ?? Infinity
    let writableWaiter: ((error?: ConnectionError) => void) | undefined

    // Runs `f` after `millis` on the Clock (never when infinite); returns a canceller.
    const after = (millis: number, f: () => void): (() => void) => {
      if (!Number.isFinite(millis)) return () => {}
      const timer = Effect.runForkWith(context)(clock.sleep(Duration.millis(millis)))
      timer.addObserver((exit) => {
        if (exit._tag === "Success") f()
      })
      return () => timer.interruptUnsafe()
    }
    const wakeWritable = (error?: ConnectionError) => {
      const waiter = writableWaiter
      writableWaiter = undefined
      waiter?.(error)
    }

    const wakeServer = (event: ReadyEvent) => {
      const waiter = serverWaiter
      serverWaiter = undefined
      waiter?.(event)
    }
    const wakeClient = () => {
      const waiter = clientWaiter
      clientWaiter = undefined
      waiter?.()
    }
    const closeServer = () => {
      if (closed) return
      closed = true
      problem ??= failure("LocalClosed", remoteAddress)
      Deferred.doneUnsafe(closedSignal, Effect.void)
      wakeServer("done")
      wakeClient()
      wakeWritable(problem)
    }

    const transport: Transport = {
      remoteAddress,
      remoteHost: options?.remoteHost ?? remoteAddress,
      get ended() {
        return problem !== undefined
      },
      get failure() {
        return problem
      },
      get bytesWritten() {
        return bytesWritten
      },
      poll(maxBytes) {
        const head = inbound[0]
        if (head === undefined) return undefined
        const available = head.length - inboundOffset
        if (available <= maxBytes) {
          inbound.shift()
          const chunk = inboundOffset === 0 ? head : head.subarray(inboundOffset)
          inboundOffset = 0
          return chunk
        }
        const chunk = head.subarray(inboundOffset, inboundOffset + maxBytes)
        inboundOffset += maxBytes
        return chunk
      },
      awaitReadable(timeoutMillis, onReady) {
        if (inbound.length > 0) {
          onReady("readable")
          return () => {}
        }
        if (problem !== undefined) {
          onReady("done")
          return () => {}
        }
        let cancelTimer = () => {}
        const waiter = (event: ReadyEvent) => {
          cancelTimer()
          onReady(event)
        }
        serverWaiter = waiter
        cancelTimer = after(timeoutMillis, () => {
          if (serverWaiter === waiter) wakeServer("timeout")
        })
        return () => {
          if (serverWaiter === waiter) serverWaiter = undefined
          cancelTimer()
        }
      },
      write(data) {
        if (closed) return failure("LocalClosed", remoteAddress)
        if (peerReset) return problem ?? failure("Closed", remoteAddress)
        const bytes = toBytes(data)
        if (bytes.length === 0) return true
        outbound.push(bytes)
        outboundBytes += bytes.length
        bytesWritten += bytes.length
        wakeClient()
        return outboundBytes < writeBufferBytes
      },
      awaitWritable(timeoutMillis, onReady) {
        if (closed) {
          onReady(failure("LocalClosed", remoteAddress))
          return () => {}
        }
        if (peerReset || outboundBytes < writeBufferBytes) {
          onReady(peerReset ? problem : undefined)
          return () => {}
        }
        let cancelTimer = () => {}
        const waiter = (error?: ConnectionError) => {
          cancelTimer()
          onReady(error)
        }
        writableWaiter = waiter
        cancelTimer = after(timeoutMillis, () => {
          if (writableWaiter === waiter) wakeWritable(failure("Timeout", remoteAddress))
        })
        return () => {
          if (writableWaiter === waiter) writableWaiter = undefined
          cancelTimer()
        }
      },
      close: closeServer,
      abort: closeServer
    }

    const takeOutbound = (): Uint8Array => {
      const out = concat(outbound, outboundBytes)
      outbound = []
      outboundBytes = 0
      wakeWritable()
      return out
    }

    const receive: Effect.Effect<Uint8Array, ConnectionError> = Effect.callback((resume) => {
      const attempt = () => {
        if (outboundBytes > 0) {
          resume(Effect.succeed(takeOutbound()))
        } else if (closed) {
          resume(Effect.fail(failure("Closed", "memory-server")))
        } else {
          clientWaiter = attempt
        }
      }
      attempt()
      return Effect.sync(() => {
        if (clientWaiter === attempt) clientWaiter = undefined
      })
    })

    const client: MemoryClient = {
      // Like a socket, which announces bytes on a later tick, the server side
      // learns of sent bytes from a scheduled task, not inside `send`.
      send: (data) =>
        Effect.withFiber((fiber) => {
          if (closed || clientEnded) return Effect.void
          const bytes = toBytes(data)
          if (bytes.length === 0) return Effect.void
          inbound.push(bytes)
          fiber.currentDispatcher.scheduleTask(() => wakeServer("readable"), 0)
          return Effect.void
        }),
      end: Effect.withFiber((fiber) => {
        if (clientEnded || closed) return Effect.void
        clientEnded = true
        problem ??= failure("Closed", remoteAddress)
        fiber.currentDispatcher.scheduleTask(() => wakeServer("done"), 0)
        return Effect.void
      }),
      reset: Effect.withFiber((fiber) => {
        if (peerReset || closed) return Effect.void
        peerReset = true
        clientEnded = true
        inbound.length = 0
        problem ??= failure("Closed", remoteAddress, "reset by the peer")
        fiber.currentDispatcher.scheduleTask(() => {
          wakeServer("done")
          wakeWritable(problem)
        }, 0)
        return Effect.void
      }),
      receive,
      receiveText: Effect.map(receive, (bytes) => decoder.decode(bytes)),
      closed: Deferred.await(closedSignal),
      isClosed: Effect.sync(() => closed)
    }

    return { connection: make(transport, options), client }
  })
