/**
 * The in-memory connection of `MemoryConnection.ts`: a transport over two
 * byte queues, and the client side that feeds and drains them.
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Connection from "../Connection.ts"
import type { MemoryClient, Options } from "../MemoryConnection.ts"
import type { ConnectionError } from "../PoolError.ts"
import { concat, toBytes } from "./bytes.ts"
import { connectionFailure as failure } from "./errors.ts"

const decoder = new TextDecoder()

// The canceller of a wait that was answered at once, or of a timer that never runs.
const nothingToCancel = () => {}

/**
 * The server side: the `Transport` the pool serves, with its methods on the
 * prototype, and the state the client side shares with it.
 */
class MemoryTransport implements Connection.Transport {
  readonly remoteAddress: string
  readonly remoteHost: string
  readonly writeBufferBytes: number
  // Timers sleep on this Clock, forked in this context, so TestClock drives them.
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
  readonly closedSignal: Deferred.Deferred<void>
  // client -> server
  readonly inbound: Array<Uint8Array> = []
  inboundOffset = 0
  clientEnded = false
  peerReset = false
  // server -> client
  outbound: Array<Uint8Array> = []
  outboundBytes = 0
  bytesWritten = 0
  closed = false
  // While corked, writes are queued without waking the client, as one delivery afterwards.
  corked = false
  problem: ConnectionError | undefined = undefined
  serverWaiter: ((event: Connection.ReadyEvent) => void) | undefined = undefined
  clientWaiter: (() => void) | undefined = undefined
  writableWaiter: ((error?: ConnectionError) => void) | undefined = undefined
  // Delivers what was written while corked, once the synchronous run that corked ends.
  readonly uncork = () => {
    this.corked = false
    wakeClient(this)
  }

  constructor(
    options: Options | undefined,
    context: Context.Context<never>,
    clock: Clock.Clock,
    closedSignal: Deferred.Deferred<void>
  ) {
    this.remoteAddress = options?.remoteAddress ?? "memory"
    this.remoteHost = options?.remoteHost ?? this.remoteAddress
    this.writeBufferBytes = options?.writeBufferBytes ?? Infinity
    this.context = context
    this.clock = clock
    this.closedSignal = closedSignal
  }

  get ended(): boolean {
    return this.problem !== undefined
  }
  get failure(): ConnectionError | undefined {
    return this.problem
  }

  poll(maxBytes: number): Uint8Array | undefined {
    const head = this.inbound[0]
    if (head === undefined) return undefined
    const available = head.length - this.inboundOffset
    if (available <= maxBytes) {
      this.inbound.shift()
      const chunk = this.inboundOffset === 0 ? head : head.subarray(this.inboundOffset)
      this.inboundOffset = 0
      return chunk
    }
    const chunk = head.subarray(this.inboundOffset, this.inboundOffset + maxBytes)
    this.inboundOffset += maxBytes
    return chunk
  }

  awaitReadable(timeoutMillis: number, onReady: (event: Connection.ReadyEvent) => void): () => void {
    if (this.inbound.length > 0) {
      onReady("readable")
      return nothingToCancel
    }
    if (this.problem !== undefined) {
      onReady("done")
      return nothingToCancel
    }
    let cancelTimer = nothingToCancel
    const waiter = (event: Connection.ReadyEvent) => {
      cancelTimer()
      onReady(event)
    }
    this.serverWaiter = waiter
    cancelTimer = after(this, timeoutMillis, () => {
      if (this.serverWaiter === waiter) wakeServer(this, "timeout")
    })
    return () => {
      if (this.serverWaiter === waiter) this.serverWaiter = undefined
      cancelTimer()
    }
  }

  write(data: Uint8Array | string): boolean | ConnectionError {
    if (this.closed) return failure("LocalClosed", this.remoteAddress)
    if (this.peerReset) return this.problem ?? failure("Closed", this.remoteAddress)
    const bytes = toBytes(data)
    if (bytes.length === 0) return true
    this.outbound.push(bytes)
    this.outboundBytes += bytes.length
    this.bytesWritten += bytes.length
    if (!this.corked) wakeClient(this)
    return this.outboundBytes < this.writeBufferBytes
  }

  awaitWritable(timeoutMillis: number, onReady: (error?: ConnectionError) => void): () => void {
    if (this.closed) {
      onReady(failure("LocalClosed", this.remoteAddress))
      return nothingToCancel
    }
    if (this.peerReset || this.outboundBytes < this.writeBufferBytes) {
      onReady(this.peerReset ? this.problem : undefined)
      return nothingToCancel
    }
    let cancelTimer = nothingToCancel
    const waiter = (error?: ConnectionError) => {
      cancelTimer()
      onReady(error)
    }
    this.writableWaiter = waiter
    cancelTimer = after(this, timeoutMillis, () => {
      if (this.writableWaiter === waiter) wakeWritable(this, failure("Timeout", this.remoteAddress))
    })
    return () => {
      if (this.writableWaiter === waiter) this.writableWaiter = undefined
      cancelTimer()
    }
  }

  close(): void {
    closeServer(this)
  }
  // Nothing is queued on the way out (the client holds what was written), so aborting is closing.
  abort(): void {
    closeServer(this)
  }

  // Like a socket's cork until process.nextTick: the writes of this
  // synchronous run reach the client together, once it ends.
  cork(): void {
    if (this.corked) return
    this.corked = true
    queueMicrotask(this.uncork)
  }
}

// Runs `f` after `millis` on the Clock (never when infinite); returns a canceller.
const after = (self: MemoryTransport, millis: number, f: () => void): (() => void) => {
  if (!Number.isFinite(millis)) return nothingToCancel
  const timer = Effect.runForkWith(self.context)(self.clock.sleep(Duration.millis(millis)))
  timer.addObserver((exit) => {
    if (exit._tag === "Success") f()
  })
  return () => timer.interruptUnsafe()
}

// Each side has at most one waiter; waking it clears it first, so it runs once.
const wakeServer = (self: MemoryTransport, event: Connection.ReadyEvent) => {
  const waiter = self.serverWaiter
  self.serverWaiter = undefined
  waiter?.(event)
}
const wakeClient = (self: MemoryTransport) => {
  const waiter = self.clientWaiter
  self.clientWaiter = undefined
  waiter?.()
}
const wakeWritable = (self: MemoryTransport, error?: ConnectionError) => {
  const waiter = self.writableWaiter
  self.writableWaiter = undefined
  waiter?.(error)
}

const closeServer = (self: MemoryTransport) => {
  if (self.closed) return
  self.closed = true
  self.problem ??= failure("LocalClosed", self.remoteAddress)
  Deferred.doneUnsafe(self.closedSignal, Effect.void)
  wakeServer(self, "done")
  wakeClient(self)
  wakeWritable(self, self.problem)
}

const takeOutbound = (self: MemoryTransport): Uint8Array => {
  const out = concat(self.outbound, self.outboundBytes)
  self.outbound = []
  self.outboundBytes = 0
  wakeWritable(self)
  return out
}

const makeReceive = (self: MemoryTransport): Effect.Effect<Uint8Array, ConnectionError> =>
  Effect.callback((resume) => {
    const attempt = () => {
      if (self.outboundBytes > 0) {
        resume(Effect.succeed(takeOutbound(self)))
      } else if (self.closed) {
        resume(Effect.fail(failure("Closed", "memory-server")))
      } else {
        self.clientWaiter = attempt
      }
    }
    attempt()
    return Effect.sync(() => {
      if (self.clientWaiter === attempt) self.clientWaiter = undefined
    })
  })

// The client side: a plain object, as tests pass its members around unbound.
const makeClient = (self: MemoryTransport): MemoryClient => {
  const receive = makeReceive(self)
  return {
    // Like a socket, which announces bytes on a later tick, the server side
    // learns of sent bytes from a scheduled task, not inside `send`.
    send: (data) =>
      Effect.withFiber((fiber) => {
        if (self.closed || self.clientEnded) return Effect.void
        const bytes = toBytes(data)
        if (bytes.length === 0) return Effect.void
        self.inbound.push(bytes)
        fiber.currentDispatcher.scheduleTask(() => wakeServer(self, "readable"), 0)
        return Effect.void
      }),
    end: Effect.withFiber((fiber) => {
      if (self.clientEnded || self.closed) return Effect.void
      self.clientEnded = true
      self.problem ??= failure("Closed", self.remoteAddress)
      fiber.currentDispatcher.scheduleTask(() => wakeServer(self, "done"), 0)
      return Effect.void
    }),
    reset: Effect.withFiber((fiber) => {
      if (self.peerReset || self.closed) return Effect.void
      self.peerReset = true
      self.clientEnded = true
      self.inbound.length = 0
      self.problem ??= failure("Closed", self.remoteAddress, "reset by the peer")
      fiber.currentDispatcher.scheduleTask(() => {
        wakeServer(self, "done")
        wakeWritable(self, self.problem)
      }, 0)
      return Effect.void
    }),
    receive,
    receiveText: Effect.map(receive, (bytes) => decoder.decode(bytes)),
    closed: Deferred.await(self.closedSignal),
    isClosed: Effect.sync(() => self.closed)
  }
}

export const make = (
  options?: Options
): Effect.Effect<{ readonly connection: Connection.Connection; readonly client: MemoryClient }> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const clock = yield* Clock.Clock
    const transport = new MemoryTransport(options, context, clock, yield* Deferred.make<void>())
    return { connection: Connection.make(transport, options), client: makeClient(transport) }
  })
