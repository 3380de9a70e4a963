import { ConnectionError } from "../PoolError.ts"

// Where intrinsics are frozen (SES / hardened JavaScript, some sandboxes),
// `Error.stackTraceLimit` cannot be written and writing it throws: as Effect
// does (its internal/stackTraceLimit.ts, after Node's own guard), check once
// and then build such errors with their stack rather than fail.
const stackTraceLimitWritable = ((): boolean => {
  const descriptor = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")
  if (descriptor === undefined) return Object.isExtensible(Error)
  return Object.hasOwn(descriptor, "writable") ? descriptor.writable === true : descriptor.set !== undefined
})()

/**
 * Errors that are expected outcomes (a pool is busy, a peer closed) happen
 * once per connection or more, and capturing a stack trace is most of what
 * building one costs while telling nothing (BENCHMARKS.md, "What each
 * optimisation bought"): build those without one.
 */
export const withoutStack = <A>(make: () => A): A => {
  if (!stackTraceLimitWritable) return make()
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
