import { ConnectionError } from "../PoolError.ts"

/**
 * Errors that are expected outcomes (a pool is busy, a peer closed) happen
 * once per connection or more, and capturing a stack trace costs several
 * microseconds each time while telling nothing: build those without one.
 */
export const withoutStack = <A>(make: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** A `ConnectionError` without a stack trace (see `Connection.failure`). */
export const connectionFailure = (
  reason: ConnectionError["reason"],
  remoteAddress: string,
  cause?: unknown
): ConnectionError =>
  withoutStack(
    () => new ConnectionError(cause === undefined ? { reason, remoteAddress } : { reason, remoteAddress, cause })
  )
