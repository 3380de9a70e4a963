/**
 * A `Connection.Transport` driven by hand, for the serve loop's tests: bytes
 * can be buffered without announcing them (as bytes still in the kernel are
 * before the event loop polls), readiness is signalled by the test, and every
 * close, abort, cork and write is recorded in order.
 */
import { Connection } from "../../src/index.ts"

const decoder = new TextDecoder()
const encoder = new TextEncoder()

export interface FakeOptions {
  /** Leave out `cork` (it is optional in the contract). */
  readonly withoutCork?: boolean
  /** Writes report a full transport, and waiting for room fails with a `Timeout` error at once. */
  readonly writesTimeOut?: boolean
  /** The canceller returned by `awaitReadable` does nothing (the wait's callback may still come). */
  readonly ineffectiveCancel?: boolean
}

export const fakeTransport = (options: FakeOptions = {}) => {
  const remoteAddress = "fake:1"
  const inbound: Array<Uint8Array> = []
  /** What happened to the transport, in order: `close`, `abort`, `cork`, `write <text>`. */
  const events: Array<string> = []
  /** The clock reading each `awaitReadable` was handed (`undefined` when none was). */
  const waitStarts: Array<number | undefined> = []
  let waiter: ((event: Connection.ReadyEvent) => void) | undefined
  let ended = false
  let written = 0
  const transport: Connection.Transport = {
    remoteAddress,
    remoteHost: "fake",
    poll(maxBytes) {
      const head = inbound[0]
      if (head === undefined) return undefined
      if (head.length <= maxBytes) {
        inbound.shift()
        return head
      }
      inbound[0] = head.subarray(maxBytes)
      return head.subarray(0, maxBytes)
    },
    get ended() {
      return ended
    },
    get failure() {
      return ended ? Connection.failure("Closed", remoteAddress) : undefined
    },
    awaitReadable(_timeoutMillis, onReady, now) {
      waitStarts.push(now)
      if (inbound.length > 0 || ended) {
        onReady(inbound.length > 0 ? "readable" : "done")
        return () => {}
      }
      waiter = onReady
      return () => {
        if (!options.ineffectiveCancel && waiter === onReady) waiter = undefined
      }
    },
    write(data) {
      if (ended) return Connection.failure("LocalClosed", remoteAddress)
      const text = typeof data === "string" ? data : decoder.decode(data)
      events.push(`write ${text}`)
      written += typeof data === "string" ? encoder.encode(data).length : data.length
      return !options.writesTimeOut
    },
    awaitWritable(_timeoutMillis, onReady) {
      onReady(options.writesTimeOut ? Connection.failure("Timeout", remoteAddress) : undefined)
      return () => {}
    },
    get bytesWritten() {
      return written
    },
    close() {
      events.push("close")
      ended = true
    },
    abort() {
      events.push("abort")
      ended = true
    }
  }
  if (!options.withoutCork) transport.cork = () => void events.push("cork")
  return {
    transport,
    connection: Connection.make(transport),
    events,
    waitStarts,
    /** Buffers bytes without announcing them. */
    arrive: (...chunks: ReadonlyArray<string>) => {
      for (const chunk of chunks) inbound.push(encoder.encode(chunk))
    },
    /** Calls the pending wait's callback (the last one given, with `ineffectiveCancel`). */
    notify: (event: Connection.ReadyEvent) => {
      const w = waiter
      if (!options.ineffectiveCancel) waiter = undefined
      w?.(event)
    },
    /** The peer closes its side: no more bytes will arrive (announced as `done`). */
    end: () => {
      ended = true
      const w = waiter
      waiter = undefined
      w?.("done")
    },
    get waiting() {
      return waiter !== undefined
    },
    get writes() {
      return events.filter((event) => event.startsWith("write ")).map((event) => event.slice(6))
    }
  }
}
