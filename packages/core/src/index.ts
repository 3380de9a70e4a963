/**
 * `@pool-manager/core`: a connection worker pool as an Effect service, with
 * no dependency on a particular runtime.
 *
 * @since 0.1.0
 */

/**
 * Connections the pool serves: the transport contract a runtime implements, and the Effect-level connection over it.
 *
 * @since 0.1.0
 */
export * as Connection from "./Connection.ts"

/**
 * How the pool cuts a connection's bytes into messages: the Go original's rule, lines, a delimiter, a length field,
 * or a decoder of one's own.
 *
 * @since 0.2.0
 */
export * as Framing from "./Framing.ts"

/**
 * The manager's configuration, its defaults and its validation.
 *
 * @since 0.1.0
 */
export * as ManagerConfig from "./ManagerConfig.ts"
/**
 * An in-memory connection and its client side, for tests of the pool and of callbacks.
 *
 * @since 0.1.0
 */
export * as MemoryConnection from "./MemoryConnection.ts"
/**
 * The errors of this package.
 *
 * @since 0.1.0
 */
export * as PoolError from "./PoolError.ts"

/**
 * The pool manager service, its constructor and its layer.
 *
 * @since 0.1.0
 */
export * as PoolManager from "./PoolManager.ts"
