/**
 * The processes the system tests start: the real server (`pool-manager`, or a
 * script built on it) on the tests' own Node, and other programs (HAProxy,
 * nginx, a systemd unit's command line). Output is collected as it arrives so
 * a test can wait for a line, and a failure can show what the process said.
 *
 * Every process started here is remembered until it exits: `killAll`
 * (cleanup.ts) kills those still running after each test, and this process's
 * exit kills them as a last resort, so no test leaves a server behind.
 */
import * as ChildProcess from "node:child_process"
import { repoRoot } from "./paths.ts"
import { fdCount, rssBytes } from "./procfs.ts"

/** A process started by `spawnProcess`. */
export interface ProcessHandle {
  readonly child: ChildProcess.ChildProcess
  readonly pid: number
  /** stdout and stderr so far, interleaved as they arrived. */
  readonly output: () => string
  /** Resolves with the first match of `pattern` in the output (searched from `from`). */
  readonly waitForOutput: (pattern: RegExp, timeout?: number, from?: number) => Promise<RegExpExecArray>
  /** Resolves with the exit code (or signal name) once the process exited. */
  readonly exited: Promise<number | string>
  readonly isRunning: () => boolean
  /** Sends `signal` (SIGTERM by default) if the process still runs, and waits until it exited. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<void>
}

/** A Node process started by `spawnNode`, with the port it listens on. */
export interface ServerProcess extends ProcessHandle {
  /** The port of its "listening on 127.0.0.1:PORT" line (0 when not waited for). */
  readonly port: number
  readonly fds: () => number
  readonly rss: () => number
}

export interface SpawnOptions {
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Run the program through this command line (e.g. `["prlimit", "--nofile=64:64", "--"]`). */
  readonly wrapper?: ReadonlyArray<string>
}

const live = new Set<ChildProcess.ChildProcess>()

process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

/** Kills every process started here that still runs (SIGKILL) and waits for them to exit. */
export const killProcesses = async (): Promise<void> => {
  await Promise.all(
    Array.from(live).map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            live.delete(child)
            return resolve()
          }
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
    )
  )
}

/** Starts `file` with `args` in the repository root, its output collected. */
export const spawnProcess = (file: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): ProcessHandle => {
  const command = [...(options.wrapper ?? []), file, ...args]
  const child = ChildProcess.spawn(command[0]!, command.slice(1), {
    cwd: repoRoot,
    env: options.env === undefined ? process.env : { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  live.add(child)
  let output = ""
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const listener of Array.from(listeners)) listener()
  }
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    notify()
  }
  child.stdout!.on("data", collect)
  child.stderr!.on("data", collect)
  let exitValue: number | string | undefined
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child)
      // Let the pipes deliver what the child wrote last.
      setTimeout(() => {
        exitValue = code ?? signal ?? "unknown"
        resolve(exitValue)
        notify()
      }, 50)
    })
  })
  const isRunning = () => child.exitCode === null && child.signalCode === null
  const waitForOutput = (pattern: RegExp, timeout = 30_000, from = 0) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output.slice(from))
        if (match !== null) {
          done()
          resolve(match)
        } else if (exitValue !== undefined) {
          done()
          reject(new Error(`process exited (${exitValue}) before printing ${pattern}\n--- output:\n${output}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeout} ms waiting for ${pattern}\n--- output:\n${output}`))
      }, timeout)
      const done = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })
  return {
    child,
    pid: child.pid!,
    output: () => output,
    waitForOutput,
    exited,
    isRunning,
    stop: async (signal = "SIGTERM") => {
      if (isRunning()) child.kill(signal)
      await exited
    }
  }
}

/**
 * Runs `node ...args` with this process's Node (Node 24), the workspace's
 * packages from their sources, and, unless `waitForListening` is false, waits
 * for its "listening on 127.0.0.1:PORT" line.
 */
export const spawnNode = async (
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly waitForListening?: boolean; readonly timeout?: number } = {}
): Promise<ServerProcess> => {
  // The workspace's packages run from their sources (README: Development).
  const handle = spawnProcess(process.execPath, ["--conditions=@pool-manager/source", ...args], options)
  let port = 0
  if (options.waitForListening !== false) {
    const match = await handle.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, options.timeout ?? 30_000)
    port = Number(match[1])
  }
  return { ...handle, port, fds: () => fdCount(handle.pid), rss: () => rssBytes(handle.pid) }
}
