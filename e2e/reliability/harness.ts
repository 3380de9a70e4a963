/**
 * What the reliability suite and the soak script share beyond the e2e
 * harness: the real server started as a child process (the `pool-manager`
 * CLI or `server.ts`, whose `stats {json}` lines this reads), its open file
 * descriptors at rest, and small loopback clients built on plain `node:net`
 * that record how each connection ended. Everything talks to 127.0.0.1 only.
 */
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import type { PoolManager } from "@pool-manager/core"
import { cliBin, fdKinds, reporter, type ServerProcess, sleep, spawnNode, waitUntil } from "../harness/index.ts"

/** The reliability server: a pool-manager server with a misbehaving callback and stats lines. */
export const serverScript = fileURLToPath(new URL("./server.ts", import.meta.url))

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** A line `label {json}` the reliability server prints: its PoolStats plus memory and fds. */
export interface ServerStats extends PoolManager.PoolStats {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
  readonly fds: number
}

/** The reliability server (`server.ts`) as started by `startScript`. */
export interface ScriptProcess extends ServerProcess {
  /** Every `label {json}` line printed so far (`stats` or `final-stats`), parsed. */
  readonly statsLines: (label?: string) => Array<ServerStats>
}

/** Starts the `pool-manager` CLI on a free port with `flags`. */
export const startCli = (flags: ReadonlyArray<string> = [], options: Parameters<typeof spawnNode>[1] = {}) =>
  spawnNode([cliBin, "--port", "0", ...flags], options)

/** Options of the reliability server (`server.ts`). */
export interface ScriptOptions {
  /** A `ManagerConfig.Input` (durations as strings or milliseconds). */
  readonly config?: Record<string, unknown>
  /** `ok`: answer OK (ERROR when empty); `echo`: answer with the message itself. */
  readonly reply?: "ok" | "echo"
  /** Print a `stats {json}` line every this many ms (0: only the `final-stats` line at exit). */
  readonly statsInterval?: number
  /** Run with --expose-gc and collect garbage before each stats line. */
  readonly gc?: boolean
  readonly nodeFlags?: ReadonlyArray<string>
}

/** Starts the reliability server on a free port. */
export const startScript = async (options: ScriptOptions = {}): Promise<ScriptProcess> => {
  const server = await spawnNode([
    ...(options.nodeFlags ?? []),
    ...(options.gc === true ? ["--expose-gc"] : []),
    serverScript,
    "--port",
    "0",
    "--config",
    JSON.stringify(options.config ?? {}),
    "--reply",
    options.reply ?? "ok",
    "--stats-interval",
    String(options.statsInterval ?? 0),
    ...(options.gc === true ? ["--gc"] : [])
  ])
  return {
    ...server,
    statsLines: (label = "stats") => {
      const lines: Array<ServerStats> = []
      const pattern = new RegExp(`^${label} (\\{.*\\})$`, "gm")
      for (const match of server.output().matchAll(pattern)) lines.push(JSON.parse(match[1]!) as ServerStats)
      return lines
    }
  }
}

/**
 * The server's open fds at rest: the fewest seen over `millis`. One read can
 * land while the server briefly holds one more (a stats line reads
 * /proc/self/fd; a module loads), and a baseline one too high is never seen
 * again.
 */
export const settledFds = async (server: ServerProcess, millis = 200): Promise<number> => {
  let fewest = server.fds()
  for (let waited = 0; waited < millis; waited += 20) {
    await sleep(20)
    fewest = Math.min(fewest, server.fds())
  }
  return fewest
}

/** Waits until the server's open fds are back at `baseline`; a timeout names what is still open. */
export const fdsBackTo = (server: ServerProcess, baseline: number, timeout = 10_000): Promise<number> =>
  waitUntil(
    () => server.fds() === baseline,
    "the server's fds to return to baseline",
    timeout,
    20,
    () => ` (baseline ${baseline}, now ${server.fds()}: ${fdKinds(server.pid)})`
  )

/** A loopback client that records everything it receives and how the connection ended. */
export interface Client {
  readonly socket: Net.Socket
  readonly received: () => Buffer
  readonly text: () => string
  readonly bytes: () => number
  /** The server closed its side (a FIN reached us); only seen while reading. */
  readonly gotEnd: () => boolean
  readonly isClosed: () => boolean
  readonly error: () => NodeJS.ErrnoException | undefined
  /** Date.now() when the socket closed. */
  readonly closedAt: () => number | undefined
  /** Writes and resolves once Node handed the bytes to the kernel. */
  readonly send: (data: string | Uint8Array) => Promise<void>
  /** Waits until `length` bytes were received in total; resolves with all of them as text, rejects if closed first. */
  readonly receive: (length: number, timeout?: number) => Promise<string>
  /** Waits until the socket closed. */
  readonly closed: (timeout?: number) => Promise<void>
}

export interface ConnectOptions {
  /** Keep our side open after the server's FIN (default false, as for any net.Socket). */
  readonly allowHalfOpen?: boolean
  /** Read what the server sends (default true). A client that does not read never sees the server's FIN. */
  readonly read?: boolean
}

/** Connects to 127.0.0.1:`port`. Rejects on a connect error (e.g. ECONNREFUSED). */
export const connect = (port: number, options: ConnectOptions = {}): Promise<Client> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", allowHalfOpen: options.allowHalfOpen ?? false })
    const chunks: Array<Buffer> = []
    let total = 0
    let gotEnd = false
    let closedAt: number | undefined
    let error: NodeJS.ErrnoException | undefined
    const listeners = new Set<() => void>()
    const notify = () => {
      for (const listener of Array.from(listeners)) listener()
    }
    if (options.read !== false) {
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        total += chunk.length
        notify()
      })
    }
    socket.on("end", () => {
      gotEnd = true
      notify()
    })
    socket.on("close", () => {
      closedAt = Date.now()
      notify()
    })
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error ??= e
    })
    const waitFor = (done: () => boolean, what: string, timeout: number) =>
      new Promise<void>((resolveWait, rejectWait) => {
        const check = () => {
          if (!done()) return
          listeners.delete(check)
          clearTimeout(timer)
          resolveWait()
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          rejectWait(new Error(`timed out after ${timeout} ms waiting for ${what}`))
        }, timeout)
        listeners.add(check)
        check()
      })
    const received = () => Buffer.concat(chunks)
    socket.once("error", reject)
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve({
        socket,
        received,
        text: () => received().toString("latin1"),
        bytes: () => total,
        gotEnd: () => gotEnd,
        isClosed: () => closedAt !== undefined,
        error: () => error,
        closedAt: () => closedAt,
        send: (data) =>
          new Promise<void>((resolveSend) => {
            if (socket.destroyed || socket.writableEnded) return resolveSend()
            socket.write(data, () => resolveSend())
          }),
        receive: (length, timeout = 5000) =>
          waitFor(() => total >= length || closedAt !== undefined, `${length} bytes (have ${total})`, timeout).then(
            () => {
              if (total < length) throw new Error(`closed after ${total} of ${length} bytes`)
              return received().toString("latin1")
            }
          ),
        closed: (timeout = 5000) => waitFor(() => closedAt !== undefined, "the connection to close", timeout)
      })
    })
  })

/** How one short exchange ended. */
export interface Exchange {
  /** What the server sent. */
  readonly reply: string
  /** The connection was closed (after a FIN from the server, or a reset). */
  readonly closed: boolean
  /** The error code, if the connection failed (ECONNREFUSED, ECONNRESET...). */
  readonly error: string | undefined
  /** Milliseconds from the start of the attempt to the close. */
  readonly millis: number
}

/**
 * Connects, optionally writes `message` (then half-closes when `end`), and
 * collects the reply until the server closes the connection or `timeout`
 * passes. Never rejects: connection errors are part of the result.
 */
export const exchange = (
  port: number,
  options: { readonly message?: string | Uint8Array; readonly end?: boolean; readonly timeout?: number } = {}
): Promise<Exchange> =>
  new Promise((resolve) => {
    const started = Date.now()
    const socket = Net.connect({ port, host: "127.0.0.1" })
    const chunks: Array<Buffer> = []
    let error: string | undefined
    let settled = false
    const finish = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ reply: Buffer.concat(chunks).toString("latin1"), closed, error, millis: Date.now() - started })
    }
    const timer = setTimeout(() => {
      finish(false)
      socket.destroy()
    }, options.timeout ?? 30_000)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message
    })
    socket.on("close", () => finish(true))
    socket.on("connect", () => {
      if (options.message !== undefined) socket.write(options.message)
      if (options.end === true) socket.end()
    })
  })

/** A deterministic pseudo-random generator (mulberry32), so a failing run can be repeated. */
export const random = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Samples `read` every `interval` ms until `stop` is called; returns the samples' max and the last value. */
export const sampler = (read: () => number, interval = 50) => {
  let max = read()
  let last = max
  const timer = setInterval(() => {
    try {
      last = read()
      if (last > max) max = last
    } catch {
      // The process may have exited between two samples.
    }
  }, interval)
  return {
    max: () => max,
    last: () => last,
    stop: () => clearInterval(timer)
  }
}

/** Logs a measurement line for the report (visible with `--reporter verbose` or in CI logs). */
export const report = reporter("reliability")
