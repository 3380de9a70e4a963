/**
 * A small loopback TCP client for the node tests: connect, send, read a given
 * number of bytes or until close, all as Effects bounded by timeouts.
 */

import * as Net from "node:net"
import { Effect } from "effect"

/** A connected test client. */
export interface TestClient {
  readonly socket: Net.Socket
  /** Everything received so far, as text. */
  readonly received: () => string
  readonly send: (data: string | Uint8Array) => Effect.Effect<void>
  /** Waits until at least `length` bytes were received in total, and returns them as text. */
  readonly receive: (length: number, timeout?: number) => Effect.Effect<string, Error>
  /** Waits until the server closed the connection. */
  readonly closed: (timeout?: number) => Effect.Effect<void, Error>
}

/** Connects to 127.0.0.1:`port` (or a unix socket path); closed with the test's scope. */
export const connect = (target: number | string) =>
  Effect.acquireRelease(
    Effect.callback<TestClient, Error>((resume) => {
      const socket = typeof target === "number" ? Net.connect(target, "127.0.0.1") : Net.connect(target)
      const chunks: Array<Buffer> = []
      let total = 0
      let isClosed = false
      const listeners = new Set<() => void>()
      const notify = () => {
        for (const listener of listeners) listener()
      }
      socket.on("data", (chunk) => {
        chunks.push(chunk)
        total += chunk.length
        notify()
      })
      socket.on("close", () => {
        isClosed = true
        notify()
      })
      socket.on("error", () => {})
      const waitFor = (done: () => boolean, what: string, timeout = 5000) =>
        Effect.callback<void, Error>((resume) => {
          const check = () => {
            if (!done()) return false
            listeners.delete(check)
            clearTimeout(timer)
            resume(Effect.void)
            return true
          }
          const timer = setTimeout(() => {
            listeners.delete(check)
            resume(Effect.fail(new Error(`timed out after ${timeout} ms waiting for ${what}`)))
          }, timeout)
          listeners.add(check)
          check()
          return Effect.sync(() => {
            listeners.delete(check)
            clearTimeout(timer)
          })
        })
      const received = () => Buffer.concat(chunks).toString()
      socket.once("connect", () =>
        resume(
          Effect.succeed({
            socket,
            received,
            send: (data) => Effect.sync(() => void socket.write(data)),
            receive: (length, timeout) =>
              Effect.map(
                waitFor(() => total >= length, `${length} bytes (have ${total})`, timeout),
                received
              ),
            closed: (timeout) => waitFor(() => isClosed, "the server to close", timeout)
          })
        )
      )
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

/** The TCP port of a listening address. */
export const portOf = (address: { readonly _tag: string; readonly port?: number }): number => {
  if (address.port === undefined) throw new Error(`not a TCP address: ${address._tag}`)
  return address.port
}

/**
 * Fills a pool of `workers` on 127.0.0.1:`port` with connections that each got
 * an `OK` (so each holds a worker until the test's scope closes), then opens
 * one more and waits until the full pool closed it; returns that refused one.
 */
export const fillPool = (port: number, workers: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < workers; i++) {
      const client = yield* connect(port)
      yield* client.send("HI!")
      const reply = yield* client.receive(2)
      if (reply !== "OK") return yield* Effect.fail(new Error(`connection ${i + 1} was answered ${reply}`))
    }
    const refused = yield* connect(port)
    yield* refused.closed()
    return refused
  })

/** One agent check as HAProxy makes it: connect, optionally send, read until closed. */
export const agentCheck = (port: number, send?: string) =>
  Effect.callback<string, Error>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let text = ""
    socket.on("data", (chunk) => {
      text += chunk
    })
    socket.on("connect", () => send !== undefined && socket.write(send))
    socket.on("close", () => resume(Effect.succeed(text)))
    socket.on("error", (error) => resume(Effect.fail(error)))
    const timer = setTimeout(() => socket.destroy(new Error("agent check timed out")), 5000)
    socket.on("close", () => clearTimeout(timer))
  })
