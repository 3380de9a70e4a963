/**
 * Helpers for the example tests: run an example as a child process (with the
 * same Node as the tests, through the node package's `spawnNode`) and talk to
 * it over loopback TCP. Every wait is
 * bounded, and a child still running when the test's scope closes is killed.
 */

import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
// One child-process helper for the whole repository: the CLI's tests own it.
import { poll, spawnNode } from "../../../node/test/utils/cliProcess.ts"

/** The absolute path of an example source file. */
export const example = (name: string): string => fileURLToPath(new URL(`../../src/${name}`, import.meta.url))

/** Starts an example server and waits for its `listening on <host>:<port>` line. */
export const startExample = (file: string, args: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([example(file), ...args], { cwd: fileURLToPath(new URL("../..", import.meta.url)) })
    const match = yield* child.waitFor(/listening on [\w.:[\]]+:(\d+)/)
    return { child, port: Number(match[1]) }
  })

/** A loopback client connection; closed when the scope closes. */
export interface Client {
  readonly send: (data: string) => Effect.Effect<void>
  /** Waits until at least `length` bytes arrived in total, and returns all of them as text. */
  readonly receive: (length: number, timeout?: number) => Effect.Effect<string, Error>
  /** Waits until the server closed the connection, and returns everything received. */
  readonly closed: (timeout?: number) => Effect.Effect<string, Error>
}

/** Connects to 127.0.0.1:`port`. */
export const connect = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly socket: Net.Socket; readonly client: Client }, Error>((resume) => {
      const socket = Net.connect(port, "127.0.0.1")
      let received = ""
      let isClosed = false
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => {
        received += chunk
      })
      socket.on("close", () => {
        isClosed = true
      })
      socket.on("error", () => {})
      const client: Client = {
        send: (data) => Effect.sync(() => void socket.write(data)),
        receive: (length, timeout = 5000) =>
          poll(
            `${length} bytes`,
            () => (received.length >= length ? received : undefined),
            timeout,
            () => ` (received ${JSON.stringify(received)})`
          ),
        closed: (timeout = 5000) => poll("the server to close", () => (isClosed ? received : undefined), timeout)
      }
      socket.once("connect", () => resume(Effect.succeed({ socket, client })))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map(({ client }) => client))

/** Sends `message` on a new connection and waits for a reply of `length` bytes. */
export const request = (port: number, message: string, length: number) =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.send(message)
    return yield* client.receive(length)
  }).pipe(Effect.scoped)
