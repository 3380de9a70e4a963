/**
 * Runs the real client programs the example tests talk to (redis-cli,
 * redis-benchmark, the libmemcached tools, ...), bounded in time. A program
 * that is not installed fails the test with what to install: these tests
 * never skip.
 */
import * as ChildProcess from "node:child_process"
import { Effect } from "effect"

/** Which Debian package brings each program (what `.ci/require` installs in CI). */
const packages: Record<string, string> = {
  "redis-cli": "redis-tools",
  "redis-benchmark": "redis-tools"
}

/** What a program printed, and how it ended (`code` null when a signal ended it). */
export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** What a program printed, once it exited with code 0. */
export type Output = Omit<Run, "code">

/** How to run a program: its standard input, time limit (ms), folder, output encoding, and its Debian package. */
export interface RunOptions {
  readonly debianPackage?: string
  readonly input?: string
  readonly timeout?: number
  readonly cwd?: string
  readonly encoding?: BufferEncoding
}

/**
 * Runs `program args...` to completion, whatever its exit code; fails when it
 * is missing or runs past `timeout` milliseconds (it is killed then).
 */
export const run = (program: string, args: ReadonlyArray<string>, options: RunOptions = {}) =>
  Effect.callback<Run, Error>((resume) => {
    const child = ChildProcess.execFile(
      program,
      args,
      {
        timeout: options.timeout ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: options.encoding ?? "utf8",
        cwd: options.cwd
      },
      (error, stdout, stderr) => {
        if (error === null) return resume(Effect.succeed({ code: 0, stdout, stderr }))
        if ((error as NodeJS.ErrnoException).code === "ENOENT") {
          return resume(
            Effect.fail(
              new Error(
                `${program} is not installed: install Debian's ${options.debianPackage ?? packages[program] ?? program} package (CI does it with .ci/require in .ci/run)`
              )
            )
          )
        }
        if (error.killed) {
          return resume(Effect.fail(new Error(`${program} ${args.join(" ")} timed out; stderr: ${stderr}`)))
        }
        resume(Effect.succeed({ code: typeof error.code === "number" ? error.code : null, stdout, stderr }))
      }
    )
    // A program may exit without reading its input (EPIPE): its exit code and
    // output say what happened, so the pipe's error is not the test's.
    child.stdin?.on("error", () => {})
    child.stdin?.end(options.input ?? "")
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

/** `run`, failing unless the program exits with code 0. */
export const runProgram = (program: string, args: ReadonlyArray<string>, options?: RunOptions) =>
  Effect.flatMap(run(program, args, options), ({ code, stdout, stderr }) =>
    code === 0
      ? Effect.succeed<Output>({ stdout, stderr })
      : Effect.fail(new Error(`${program} ${args.join(" ")} exited with code ${code}:\n${stdout}\n${stderr}`))
  )
