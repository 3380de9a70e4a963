/**
 * Helpers for the tests that run the `pool-manager` command (or, from
 * packages/examples, an example) as a child process: spawn it (killed with the test's scope if still running), wait for
 * output, fetch its HTTP endpoints, and parse the Prometheus text format.
 * Every wait is bounded.
 */

import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { NodeCliConfig } from "../../src/index.ts"

/** The `pool-manager` executable. */
export const bin = fileURLToPath(new URL("../../bin/pool-manager.ts", import.meta.url))

/** The command with a callback that logs and answers inside its own span (see `fixtures/traced-server.ts`). */
export const tracedServer = fileURLToPath(new URL("../fixtures/traced-server.ts", import.meta.url))

/** The command with a slow callback for messages starting with `SLOW` (see `fixtures/slow-server.ts`). */
export const slowServer = fileURLToPath(new URL("../fixtures/slow-server.ts", import.meta.url))

const packageDir = fileURLToPath(new URL("../..", import.meta.url))

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
export interface CliProcess {
  readonly process: ChildProcess.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Waits until stdout matches `pattern` (a global pattern: until it matches `count` times). */
  readonly waitFor: (pattern: RegExp, timeout?: number) => Effect.Effect<RegExpExecArray, Error>
  readonly waitForAll: (
    pattern: RegExp,
    count: number,
    timeout?: number
  ) => Effect.Effect<Array<RegExpExecArray>, Error>
  /** Waits until the process exited; its exit code, or the signal that killed it. */
  readonly exit: (timeout?: number) => Effect.Effect<number | string, Error>
}

/**
 * Runs `node ...args` with the tests' own Node (in this package's folder unless
 * `cwd` says otherwise, with `env` added to this process's environment); killed
 * when the scope closes if still running.
 */
export const spawnNode = (
  args: ReadonlyArray<string>,
  options?: { readonly cwd?: string | undefined; readonly env?: Readonly<Record<string, string>> | undefined }
) =>
  Effect.acquireRelease(
    Effect.sync((): CliProcess => {
      // The workspace's packages run from their sources (README: Development).
      const child = ChildProcess.spawn(process.execPath, ["--conditions=@pool-manager/source", ...args], {
        cwd: options?.cwd ?? packageDir,
        env: options?.env === undefined ? process.env : { ...process.env, ...options.env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let exited: number | string | undefined
      child.stdout.on("data", (chunk) => {
        stdout += chunk
      })
      child.stderr.on("data", (chunk) => {
        stderr += chunk
      })
      child.on("exit", (code, signal) => {
        exited = code ?? signal ?? "unknown"
      })
      const details = () => `\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`
      return {
        process: child,
        stdout: () => stdout,
        stderr: () => stderr,
        waitFor: (pattern, timeout = 30_000) =>
          poll(
            `${pattern}`,
            () => new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(stdout) ?? undefined,
            timeout,
            details
          ),
        waitForAll: (pattern, count, timeout = 30_000) =>
          poll(
            `${count} × ${pattern}`,
            () => {
              const matches = Array.from(
                stdout.matchAll(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`))
              )
              return matches.length >= count ? matches : undefined
            },
            timeout,
            details
          ),
        exit: (timeout = 30_000) => poll("the process to exit", () => exited, timeout, details)
      }
    }),
    ({ process: child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

/** Runs the `pool-manager` bin with `args` to completion: its exit code and output. */
export const runBin = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([bin, ...args])
    const code = yield* child.exit()
    return { code, stdout: child.stdout(), stderr: child.stderr() }
  }).pipe(Effect.scoped)

/** A temporary directory, removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pool-manager-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A config file `pool.yaml` holding `text`, in a folder of its own removed with the scope; its path. */
export const configFile = (text: string) =>
  Effect.map(tempDir, (dir) => {
    const file = Path.join(dir, "pool.yaml")
    Fs.writeFileSync(file, text)
    return file
  })

/** GET `url`; the status and the body. */
export const get = (url: string) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
      return { status: response.status, body: await response.text() }
    },
    catch: (cause) => new Error(`GET ${url} failed: ${String(cause)}`)
  })

/** One sample of the Prometheus text format. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/
const labelPair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y
const commentLine =
  /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/

/** Parses the Prometheus text format; throws on any line that is not a valid comment or sample. */
export const parsePrometheus = (text: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("#")) {
      if (!commentLine.test(line)) throw new Error(`bad comment line: ${line}`)
      continue
    }
    const match = sampleLine.exec(line)
    if (match === null) throw new Error(`bad sample line: ${line}`)
    const labels: Record<string, string> = {}
    const body = match[2] ?? ""
    labelPair.lastIndex = 0
    while (labelPair.lastIndex < body.length) {
      const pair = labelPair.exec(body)
      if (pair === null) throw new Error(`bad labels in: ${line}`)
      labels[pair[1]!] = pair[2]!
    }
    const value = match[3] === "+Inf" ? Infinity : match[3] === "-Inf" ? -Infinity : Number(match[3])
    if (Number.isNaN(value) && match[3] !== "NaN") throw new Error(`bad value in: ${line}`)
    samples.push({ name: match[1]!, labels, value })
  }
  return samples
}

/** The samples named `name` whose labels include `labels`. */
export const select = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}) =>
  samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  )

/** The sum of the values of `select(samples, name, labels)`. */
export const total = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number =>
  select(samples, name, labels).reduce((sum, sample) => sum + sample.value, 0)

/** Settings with no flag given, to build on in tests of `NodeCliConfig.makeConfig`. */
export const noFlags = Object.fromEntries(
  Object.keys(NodeCliConfig.flags()).map((key) => [key, Option.none()])
) as unknown as NodeCliConfig.Settings
