/**
 * The in-memory connection of `MemoryConnection.ts`: a transport over two
 * byte queues, and the client side that feeds and drains them.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Connection from "../Connection.ts"
import type { MemoryClient, Options } from "../MemoryConnection.ts"
import type { ConnectionError } from "../PoolError.ts"
import { concat, toBytes } from "./bytes.ts"
import { connectionFailure as failure } from "./errors.ts"

const decoder = new TextDecoder()

export const make = (
  options?: Options
): Effect.Effect<{ readonly connection: Connection.Connection; readonly client: MemoryClient }> =>
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
    // While corked, writes are queued without waking the client, as one delivery afterwards.
    let corked = false
    let problem: ConnectionError | undefined
    const closedSignal = yield* Deferred.make<void>()
    let serverWaiter: ((event: Connection.ReadyEvent) => void) | undefined
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

    const wakeServer = (event: Connection.ReadyEvent) => {
      const waiter = serverWaiter
      serverWaiter = undefined
      waiter?.(event)
    }
    const wakeClient = () => {
      const waiter = clientWaiter
      clientWaiter = undefined
      waiter?.()
    }
    const uncork = () => {
      corked = false
      wakeClient()
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

    const transport: Connection.Transport = {
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
        const waiter = (event: Connection.ReadyEvent) => {
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
        if (!corked) wakeClient()
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
      abort: closeServer,
      // Like a socket's cork until process.nextTick: the writes of this
      // synchronous run reach the client together, once it ends.
      cork() {
        if (corked) return
        corked = true
        queueMicrotask(uncork)
      }
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

    return { connection: Connection.make(transport, options), client }
  })
