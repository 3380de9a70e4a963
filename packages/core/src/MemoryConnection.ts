/**
 * An in-memory connection and its client side: a test double of a socket,
 * for tests of the pool and of user callbacks (like `effect/testing` or Go's
 * `fasthttputil`). The server side is a real `Connection.Transport`, so the
 * pool serves it as it serves a socket; its deadline and write timers sleep on
 * Effect's `Clock`, so under `it.effect` `TestClock` drives them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryConnection, PoolManager } from "@pool-manager/core"
 *
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.PoolManager
 *   const { client, connection } = yield* MemoryConnection.make()
 *   yield* manager.put(connection)
 *   yield* client.send("hello")
 *   return yield* client.receiveText
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Connection from "./Connection.ts"
import * as internal from "./internal/memoryConnection.ts"
import type { ConnectionError } from "./PoolError.ts"

/**
 * The client side of an in-memory connection: what a test does as the peer.
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
 * Options for `make`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends Connection.Options {
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

/**
 * An in-memory connection and its client side. The server side's deadline
 * timer sleeps on the `Clock` of the context this runs in, so under
 * `it.effect` it follows `TestClock`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: (
  options?: Options
) => Effect.Effect<{ readonly connection: Connection.Connection; readonly client: MemoryClient }> = internal.make
