/**
 * The adapter from a `Transport` to the Effect-level `Connection` that
 * callbacks use (`Connection.make`).
 */
import * as Effect from "effect/Effect"
import type { Connection, Transport } from "../Connection.ts"
import type { ConnectionError } from "../PoolError.ts"
import { connectionFailure as failure } from "./errors.ts"

// A write of the same small payload (an `OK`, an `ERROR`) reuses its effect:
// effects are values, and most servers answer with a few constant replies.
// Larger payloads are not kept, so a connection never pins a big buffer.
const reusableWriteBytes = 256

/**
 * The `Connection` `Connection.make` returns: one object per connection, its effects
 * built when first used (most callbacks never `read`), so holding 10,000
 * connections costs 10,000 small objects.
 */
export class TransportConnection implements Connection {
  readonly transport: Transport
  readonly bufferSize: number
  // How long `read` and a waiting `write` may wait, in milliseconds: set by
  // the pool that serves the connection (`setDeadline`), re-read at every
  // wait so that a config change applies to the next one.
  deadlineMillis = Number.POSITIVE_INFINITY
  private readEffect: Effect.Effect<Uint8Array, ConnectionError> | undefined = undefined
  private drainedEffect: Effect.Effect<void, ConnectionError> | undefined = undefined
  private closeEffect: Effect.Effect<void> | undefined = undefined
  private lastData: Uint8Array | string | undefined = undefined
  private lastWrite: Effect.Effect<void, ConnectionError> | undefined = undefined
  constructor(transport: Transport, bufferSize: number) {
    this.transport = transport
    this.bufferSize = bufferSize
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress
  }
  get read(): Effect.Effect<Uint8Array, ConnectionError> {
    if (this.readEffect === undefined) this.readEffect = makeRead(this)
    return this.readEffect
  }
  get close(): Effect.Effect<void> {
    if (this.closeEffect === undefined) this.closeEffect = Effect.sync(() => this.transport.close())
    return this.closeEffect
  }
  // A property, not a method: callbacks pass `conn.write` around unbound.
  readonly write = (data: Uint8Array | string): Effect.Effect<void, ConnectionError> => {
    if (data === this.lastData) return this.lastWrite!
    const effect = Effect.suspend(() => this.writeOrRest(data) ?? Effect.void)
    if (data.length <= reusableWriteBytes) {
      this.lastData = data
      this.lastWrite = effect
    }
    return effect
  }
  // Writes `data` now. Most writes are taken at once: undefined then; else
  // what is left of the write, its failure or the wait for the peer to read
  // (only a full transport costs a callback).
  writeOrRest(data: Uint8Array | string): Effect.Effect<void, ConnectionError> | undefined {
    const written = this.transport.write(data)
    if (written === true) return undefined
    if (written !== false) return Effect.fail(written)
    if (this.drainedEffect === undefined) this.drainedEffect = makeDrained(this)
    return this.drainedEffect
  }
  /**
   * Runs `effect` at once when it is this connection's latest small write
   * (`write`'s cached effect, the one a callback returns most often): its
   * write happens here, and what is left of it comes back (undefined when
   * nothing is), as the effect would have done in a fiber. Any other effect
   * comes back as it is, not run.
   */
  runNow(effect: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> | undefined {
    return effect === this.lastWrite ? this.writeOrRest(this.lastData!) : effect
  }
  /**
   * Whether `effect` is this connection's wait for the peer to read (what
   * `runNow` leaves of a write the transport could not take whole): an
   * effect of the pool's own, which needs none of the callback's services.
   */
  isDrainWait(effect: Effect.Effect<unknown, unknown>): boolean {
    return effect === this.drainedEffect
  }
  readonly writeNow = (data: Uint8Array | string): boolean | ConnectionError => this.transport.write(data)
  readonly closeNow = (): void => this.transport.close()
}

/**
 * Sets the deadline of `connection`'s reads and waiting writes, when it is one
 * `Connection.make` built (other implementations of `Connection` keep their
 * own deadlines).
 */
export const setDeadline = (connection: Connection, millis: number): void => {
  if (connection instanceof TransportConnection) connection.deadlineMillis = millis
}

const makeDrained = (connection: TransportConnection): Effect.Effect<void, ConnectionError> =>
  Effect.callback<void, ConnectionError>((resume) => {
    const cancel = connection.transport.awaitWritable(connection.deadlineMillis, (error) =>
      resume(error === undefined ? Effect.void : Effect.fail(error))
    )
    return Effect.sync(cancel)
  })

// Waits up to the connection's deadline (which the pool sets from
// clientsDeadline, as Go's SetDeadline covers reads and writes).
const makeRead = (connection: TransportConnection): Effect.Effect<Uint8Array, ConnectionError> =>
  Effect.callback<Uint8Array, ConnectionError>((resume) => {
    const { transport, bufferSize } = connection
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
      cancel = transport.awaitReadable(connection.deadlineMillis, (event) => {
        cancel = undefined
        if (attempt()) return
        if (event === "timeout") resume(Effect.fail(failure("Timeout", transport.remoteAddress, readTimeout)))
        else wait()
      })
    }
    wait()
    return Effect.sync(() => cancel?.())
  })

const readTimeout = "no bytes arrived within the deadline"
