/**
 * Helpers for the memcached example's tests: the server built in the test's
 * scope on a free loopback port, a raw byte-exact client, and the real
 * libmemcached tools run as child processes (a missing tool fails the test
 * with what to install, never skips it). Every wait is bounded.
 */
import * as Net from "node:net"
import { NodeTcpServer } from "@pool-manager/node"
import { Context, Effect, Layer } from "effect"
import { poll } from "../../../node/test/utils/cliProcess.ts"
import { layer, type Options } from "../../src/memcached.ts"
import { run } from "./programs.ts"

/** Builds the memcached server in the test's scope and returns its port. */
export const startMemcached = (options: Options = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(layer({ host: "127.0.0.1", port: 0, ...options }))
    const address = Context.get(context, NodeTcpServer.NodeTcpServer).address
    if (!("port" in address)) return yield* Effect.die(new Error(`not a TCP address: ${String(address)}`))
    return { port: address.port as number }
  })

/** A loopback client that sees bytes, not text. */
export interface RawClient {
  readonly send: (data: string | Uint8Array) => Effect.Effect<void>
  /** Waits until at least `length` bytes are unread, and returns (and consumes) all unread bytes as latin1. */
  readonly receive: (length: number, timeout?: number) => Effect.Effect<string, Error>
  /** Waits until the unread bytes end with `suffix`, and returns (and consumes) them as latin1. */
  readonly receiveUntil: (suffix: string, timeout?: number) => Effect.Effect<string, Error>
  /** Sends `data` (latin1) and expects exactly `reply` back. */
  readonly roundTrip: (data: string, reply: string) => Effect.Effect<string, Error>
  /** Waits until the server closed the connection, and returns what was unread. */
  readonly closed: (timeout?: number) => Effect.Effect<string, Error>
}

/** Connects to 127.0.0.1:`port`; the socket is destroyed when the scope closes. */
export const rawConnect = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.setNoDelay(true)
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(
    Effect.map((socket): RawClient => {
      let unread = Buffer.alloc(0)
      let isClosed = false
      socket.on("data", (chunk: Buffer) => {
        unread = Buffer.concat([unread, chunk])
      })
      socket.on("close", () => {
        isClosed = true
      })
      socket.on("error", () => {})
      const take = () => {
        const text = unread.toString("latin1")
        unread = Buffer.alloc(0)
        return text
      }
      const receive = (length: number, timeout = 10_000) =>
        poll(
          `${length} bytes`,
          () => (unread.length >= length ? take() : undefined),
          timeout,
          () => ` (received ${JSON.stringify(unread.toString("latin1").slice(0, 300))})`
        )
      const send = (data: string | Uint8Array) =>
        Effect.sync(() => void socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data))
      return {
        send,
        receive,
        receiveUntil: (suffix, timeout = 10_000) =>
          poll(
            JSON.stringify(suffix),
            () => (unread.toString("latin1").endsWith(suffix) ? take() : undefined),
            timeout,
            () => ` (received ${JSON.stringify(unread.toString("latin1").slice(0, 300))})`
          ),
        roundTrip: (data, reply) => Effect.andThen(send(data), receive(Buffer.byteLength(reply, "latin1"))),
        closed: (timeout = 10_000) => poll("the server to close", () => (isClosed ? take() : undefined), timeout)
      }
    })
  )

/**
 * Runs a libmemcached tool (e.g. `memccp`) with `args`, for at most two
 * minutes, its output as latin1 (values are bytes). A tool that is not
 * installed fails with what to install.
 */
export const runTool = (program: string, args: ReadonlyArray<string>, options: { readonly cwd?: string } = {}) =>
  run(program, args, { ...options, timeout: 120_000, encoding: "latin1", debianPackage: "libmemcached-tools" })
