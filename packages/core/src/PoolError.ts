/**
 * The errors of `@pool-manager/core`. Each one is a tagged error, so callers
 * can recover from a specific failure with `Effect.catchTag`, and each message
 * says what happened and what to do about it.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A `ManagerConfig` input was rejected. `issues` lists every offending field
 * with the value it had; the running configuration, if any, is unchanged.
 *
 * @category errors
 * @since 0.1.0
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  issues: Schema.Array(Schema.Struct({ field: Schema.String, value: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid pool manager config: ${this.issues
      .map((issue) => `${issue.field} = ${issue.value}: ${issue.message}`)
      .join("; ")}`
  }
}

/**
 * `start` was called on a manager that is already running (the Go original's
 * "already running" error). Call `stop` first to restart it.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyRunningError extends Schema.TaggedError<AlreadyRunningError>()("AlreadyRunningError", {}) {
  override get message(): string {
    return "pool manager is already running: call stop before starting it again"
  }
}

/**
 * `put` was called while the manager is stopped or stopping. The caller still
 * owns the connection and should answer and close it.
 *
 * @category errors
 * @since 0.1.0
 */
export class NotRunningError extends Schema.TaggedError<NotRunningError>()("NotRunningError", {}) {
  override get message(): string {
    return "pool manager is not running: call start before putting connections"
  }
}

/**
 * Every worker is busy and the pool is at `maxWorkersCount`. The caller still
 * owns the connection; the Go original's example server answers `ERROR_SERVER_BUSY` and closes it.
 *
 * @example
 * ```ts
 * import type { Connection, PoolManager } from "@pool-manager/core"
 * import { Effect } from "effect"
 *
 * // A listener's side of `put`: on failure it still owns the connection.
 * const admit = (manager: PoolManager.PoolManager["Service"], connection: Connection.Connection) =>
 *   manager.put(connection).pipe(
 *     Effect.catchTags({
 *       PoolBusyError: () => connection.write("ERROR_SERVER_BUSY").pipe(Effect.ignore, Effect.andThen(connection.close)),
 *       AddressLimitError: (error) => Effect.logWarning(error.message).pipe(Effect.andThen(connection.close)),
 *       NotRunningError: () => connection.close
 *     })
 *   )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolBusyError extends Schema.TaggedError<PoolBusyError>()("PoolBusyError", {
  maxWorkersCount: Schema.Number
}) {
  override get message(): string {
    return "can't put, pool is busy"
  }
}

/**
 * `put` refused a connection because its client host already has
 * `maxConnectionsPerAddress` connections admitted or waiting. The caller still
 * owns the connection.
 *
 * @category errors
 * @since 0.1.0
 */
export class AddressLimitError extends Schema.TaggedError<AddressLimitError>()("AddressLimitError", {
  remoteHost: Schema.String,
  maxConnectionsPerAddress: Schema.Number
}) {
  override get message(): string {
    return `can't put, too many connections from ${this.remoteHost} (maxConnectionsPerAddress is ${this.maxConnectionsPerAddress})`
  }
}

/**
 * A read or write on a `Connection` failed. `reason` tells why: the peer closed
 * its side (`Closed`), the connection was closed locally (`LocalClosed`), the
 * transport reported an error (`Error`, with its `cause`), or a write could not
 * proceed within the write timeout because the peer read nothing, or (since
 * 0.2.0) a callback's `read` got no bytes within it (`Timeout`; the pool
 * applies `clientsDeadline` to both, as Go's `SetDeadline`).
 *
 * @category errors
 * @since 0.1.0
 */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  reason: Schema.Literals(["Closed", "LocalClosed", "Error", "Timeout"]),
  remoteAddress: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    if (this.reason === "Closed") return `connection ${this.remoteAddress} was closed by the peer`
    if (this.reason === "LocalClosed") return `connection ${this.remoteAddress} is already closed`
    if (this.reason === "Timeout")
      return this.cause === undefined
        ? `connection ${this.remoteAddress} read nothing of what was written to it in time`
        : `connection ${this.remoteAddress} timed out: ${String(this.cause)}`
    return `connection ${this.remoteAddress} failed: ${String(this.cause)}`
  }
}

/**
 * Whether `u` is a `ConnectionError`.
 *
 * @category guards
 * @since 0.1.0
 */
export const isConnectionError = (u: unknown): u is ConnectionError => u instanceof ConnectionError
