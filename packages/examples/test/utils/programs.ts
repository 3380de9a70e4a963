/**
 * Runs the real client programs the example tests talk to (redis-cli,
 * redis-benchmark, ...), bounded in time. A program that is not installed
 * fails the test with what to install: these tests never skip.
 */
import * as ChildProcess from "node:child_process"
import { Effect } from "effect"

/** Which Debian package brings each program (what `.ci/require` installs in CI). */
const packages: Record<string, string> = {
  "redis-cli": "redis-tools",
  "redis-benchmark": "redis-tools"
}

/** What a program printed, once it exited with code 0. */
export interface Output {
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `program args...` to completion with `input` on its standard input;
 * fails when it is missing, exits with another code than 0, or runs past
 * `timeout` milliseconds (it is killed then).
 */
export const runProgram = (
  program: string,
  args: ReadonlyArray<string>,
  options?: { readonly input?: string; readonly timeout?: number }
) =>
  Effect.callback<Output, Error>((resume) => {
    const child = ChildProcess.execFile(
      program,
      args,
      { timeout: options?.timeout ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) return resume(Effect.succeed({ stdout, stderr }))
        const missing = (error as NodeJS.ErrnoException).code === "ENOENT"
        resume(
          Effect.fail(
            new Error(
              missing
                ? `${program} is not installed: install Debian's ${packages[program] ?? program} package (CI does it with .ci/require in .ci/run)`
                : `${program} ${args.join(" ")} failed (${error.message}):\n${stdout}\n${stderr}`
            )
          )
        )
      }
    )
    child.stdin?.end(options?.input ?? "")
    return Effect.sync(() => void child.kill("SIGKILL"))
  })
