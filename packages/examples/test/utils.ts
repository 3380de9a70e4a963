/**
 * Helpers for the example tests: run an example as a child process (with the
 * same Node as the tests) and talk to it over loopback TCP. Every wait is
 * bounded, and a child still running when the test's scope closes is killed.
 */

import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

/** The absolute path of an example source file. */
export const example = (name: string): string => fileURLToPath(new URL(`../src/${name}`, import.meta.url))

/** Polls `check` every 20 ms until it returns a value, failing after `timeout` ms. */
export const poll = <A>(what: string, check: () => A | undefined, timeout = 20_000, details = () => "") =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeout
    while (true) {
      const value = check()
      if (value !== undefined) return value
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}${details()}`))
      yield* Effect.sleep("20 millis")
    }
  })

/** A running child process and what it printed. */
export interface Child {
  readonly process: ChildProcess.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Waits until stdout matches `pattern`. */
  readonly waitFor: (pattern: RegExp, timeout?: number) => Effect.Effect<RegExpExecArray, Error>
  /** Waits until the process exited, and returns its exit code (or the signal that killed it). */
  readonly exit: (timeout?: number) => Effect.Effect<number | NodeJS.Signals, Error>
}

/** Starts `node ...args`; the child is killed (if still running) when the scope closes. */
export const spawnNode = (args: ReadonlyArray<string>, options?: { readonly cwd?: string; readonly env?: object }) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = ChildProcess.spawn(process.execPath, args, {
        cwd: options?.cwd,
        env: { ...process.env, ...options?.env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let exited: number | NodeJS.Signals | undefined
      child.stdout.on("data", (chunk) => {
        stdout += chunk
      })
      child.stderr.on("data", (chunk) => {
        stderr += chunk
      })
      child.on("exit", (code, signal) => {
        exited = code ?? signal ?? -1
      })
      const details = () => `\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`
      return {
        process: child,
        stdout: () => stdout,
        stderr: () => stderr,
        waitFor: (pattern, timeout) =>
          poll(`${pattern} in the output`, () => pattern.exec(stdout) ?? undefined, timeout, details),
        exit: (timeout) => poll("the process to exit", () => exited, timeout, details)
      }
    }),
    (child) =>
      Effect.sync(() => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
      })
  )

/** Starts an example server and waits for its `listening on <host>:<port>` line. */
export const startExample = (file: string, args: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([example(file), ...args])
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
