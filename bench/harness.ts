/**
 * What the benchmark runs are made of (bench/run.ts and bench/sweep.ts): the
 * servers and how to start them, the C load client, sampling a server's RSS
 * and CPU over the client's measurement window (with bench/process.ts), and
 * one measurement: a fresh server, the client against it, then SIGTERM.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { switchCounting, underCallgrind } from "./callgrind.ts"
import { type RunningServer, rssMb, sampleWindow, startServer, stopFailure, stopServer, type Usage } from "./process.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const repoDir = dirname(benchDir)
const buildDir = join(benchDir, "build")
const clientSource = join(benchDir, "client.c")
const clientBinary = join(benchDir, "bin", "client")

/** How to run one server: its program, its arguments, and how it says where it listens. */
export interface ServerSpec {
  /** The compiled program. */
  readonly file: string
  readonly args?: ReadonlyArray<string>
  /** Node flags of this server only, after the run's own (`--node-flags`). */
  readonly nodeFlags?: ReadonlyArray<string>
  /** The stdout line that gives the port (default `listening <port>`). */
  readonly listening?: RegExp
  /** Several processes: never pinned to one CPU. */
  readonly processes?: number
  /** A sentence for `--help`. */
  readonly about: string
}

const cliBin = join(repoDir, "packages", "node", "dist", "bin", "pool-manager.js")
// The command as shipped, with no worker limit (the bench servers have none either).
const cliArgs = ["--port", "0", "--max-workers", "0"]
const cliListening = /listening on 127\.0\.0\.1:(\d+) /

/**
 * The servers, each the name of its file in bench/servers/ except the
 * variants: the cluster modes and the shipped command.
 */
export const servers: Readonly<Record<string, ServerSpec>> = {
  raw: { file: join(buildDir, "raw.js"), about: "plain node:net, the baseline" },
  floor: {
    file: join(buildDir, "floor.js"),
    about: "node:net, a fiber per connection resumed per message to run an Effect callback: the Effect path's floor"
  },
  "floor-mixed": {
    file: join(buildDir, "floor.js"),
    args: ["--mixed"],
    about: "floor after a short program of other effects: Effect's run loop as in any real program"
  },
  pool: {
    file: join(buildDir, "pool.js"),
    about: "NodeTcpServer + PoolManager, an Effect callback returning its write (run at once, no fiber resumption)"
  },
  "pool-fiber": {
    file: join(buildDir, "pool.js"),
    args: ["--fiber"],
    about: "the pool server with the floor's callback (Effect.sync around the write): a fiber of its own per message"
  },
  "pool-sync": { file: join(buildDir, "pool-sync.js"), about: "the pool server with a PoolManager.syncCallback" },
  "effect-socket": { file: join(buildDir, "effect-socket.js"), about: "Effect's own NodeSocketServer" },
  "pool-traced": {
    file: join(buildDir, "pool.js"),
    args: ["--trace=connection"],
    about: "the pool server with a tracer installed: a pool.connection span per connection"
  },
  "pool-traced-messages": {
    file: join(buildDir, "pool.js"),
    args: ["--trace=message"],
    about: "the same with messageSpanSampleRate 1: a pool.message span per message too"
  },
  "pool-cluster-reuseport": {
    file: join(buildDir, "pool-cluster.js"),
    args: ["reuseport"],
    processes: 3,
    about: "the pool server in 2 processes of NodeCluster.runPrimary, each binding the port (SO_REUSEPORT)"
  },
  "pool-cluster-handoff": {
    file: join(buildDir, "pool-cluster.js"),
    args: ["handoff"],
    processes: 3,
    about: "the same with node:cluster's hand-off: the primary accepts and passes sockets over IPC"
  },
  "pool-cli": {
    file: cliBin,
    args: cliArgs,
    listening: cliListening,
    about: "the pool-manager bin as shipped (it re-executes itself with --max-semi-space-size=16)"
  },
  "pool-cli-default-heap": {
    file: cliBin,
    args: cliArgs,
    nodeFlags: ["--max-semi-space-size=0"],
    listening: cliListening,
    about: "the bin started with --max-semi-space-size=0: V8's default young generation"
  }
}

/** What the C client prints (one JSON line). */
export interface ClientResult {
  readonly mode: string
  /** Requests per connection of the connect mode. */
  readonly messages: number
  readonly size: number
  readonly connected: number
  readonly completed: number
  readonly errors: number
  readonly connect_errors: number
  readonly resets: number
  readonly timeouts: number
  readonly connect_s: number
  readonly duration_s: number
  readonly rate: number
  readonly p50_us: number
  readonly p99_us: number
  readonly max_us: number
  readonly cpu_s: number
}

/** One server under one load: what the client saw and what the server used. */
export interface Measurement {
  readonly round: number
  readonly server: string
  readonly ok: boolean
  readonly failure?: string
  readonly client?: ClientResult
  readonly serverRssStartMb?: number
  readonly serverRssMb?: number
  readonly serverCpuPct?: number
  readonly clientCpuPct?: number
  /** CPU used by everything else on the machine (other tenants, the kernel), % of one core. */
  readonly otherCpuPct?: number
  /**
   * The server's CPU per completed request, in user space and in the kernel
   * (µs): what a closed-loop rate is the inverse of, split where a profile
   * would start looking.
   */
  readonly serverUserUs?: number
  readonly serverKernelUs?: number
  /**
   * How often the client slept per completed request: each sleep is a
   * wake-up the server's reply pays for in the kernel, more of them the
   * slower the server (BENCHMARKS.md, "Not instructions but cache lines").
   */
  readonly clientSleeps?: number
  readonly serverExitCode?: number | null
  /** Seconds from SIGTERM to the server's exit. */
  readonly serverStopSeconds?: number
  /** Connections each server process accepted (its `accepted <n>` lines at exit), for the spread of a cluster. */
  readonly accepted?: ReadonlyArray<number>
}

/** How every measurement of a run is made. */
export interface Settings {
  readonly duration: number
  readonly warmup: number
  /** Node/V8 flags for every server alike. */
  readonly nodeFlags: ReadonlyArray<string>
  /** Server on CPU 1, client on CPU 0. */
  readonly pin: boolean
  /** With `--callgrind`: the server runs under callgrind, counting in the client's window, into this file. */
  readonly callgrindFile?: string | undefined
}

/** The hard limit of open files of a process started here: caps the connections a run can hold. */
export const fileLimit = (): number =>
  Number(execFileSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim()) || 1024

/**
 * Compiles the packages, the bin and the server programs to JavaScript (a few
 * seconds): this work tree's, or with `root` another's (`--base`), then the C
 * client.
 */
export const build = (root: string = repoDir): void => {
  const tsc = join(repoDir, "node_modules", ".bin", "tsc")
  console.error(`building packages/core, packages/node (with its bin) and bench/servers of ${root} to JavaScript`)
  for (const config of [
    "packages/core/tsconfig.build.json",
    "packages/node/tsconfig.build.json",
    "packages/node/tsconfig.bin.json",
    "bench/tsconfig.build.json"
  ]) {
    execFileSync(tsc, ["-p", join(root, config)], { stdio: "inherit" })
  }
  if (existsSync(clientBinary) && statSync(clientBinary).mtimeMs >= statSync(clientSource).mtimeMs) return
  mkdirSync(dirname(clientBinary), { recursive: true })
  console.error(`building ${clientBinary}`)
  execFileSync("cc", ["-O2", "-o", clientBinary, clientSource], { stdio: "inherit" })
}

// With --pin: the server on CPU 1, the client on CPU 0 (a clustered server needs both, so it is left alone).
const serverCpu = (settings: Settings, spec: ServerSpec): number | undefined =>
  settings.pin && (spec.processes ?? 1) === 1 ? 1 : undefined

// `servers`, and the `NAME@base` twins `addBase` made.
const specs: Record<string, ServerSpec> = { ...servers }

/**
 * For an A/B of two builds in the same rounds (`--base DIR`): builds the work
 * tree `dir` (another commit of this repository, its `npm ci` done) and adds a
 * server `NAME@base` for each of `names`, the same program from `dir`'s build
 * (its packages resolved from `dir`). Returns the new names.
 */
export const addBase = (dir: string, names: ReadonlyArray<string>): Array<string> => {
  const root = resolve(dir)
  if (!existsSync(join(root, "node_modules"))) throw new Error(`--base ${dir}: run npm ci there first`)
  build(root)
  return names.map((name) => {
    const spec = servers[name]!
    specs[`${name}@base`] = { ...spec, file: join(root, relative(repoDir, spec.file)), about: `${spec.about} (${dir})` }
    return `${name}@base`
  })
}

/** Starts one of `servers` (or a twin of `addBase`) and waits for the line that says its port. */
const startNamed = (name: string, settings: Settings, extraArgs: ReadonlyArray<string>): Promise<RunningServer> => {
  const spec = specs[name]!
  const cpu = serverCpu(settings, spec)
  const argv = [process.execPath, ...settings.nodeFlags, ...(spec.nodeFlags ?? []), spec.file, ...(spec.args ?? [])]
  return startServer({
    name,
    argv: [
      ...(settings.callgrindFile === undefined ? argv : underCallgrind(settings.callgrindFile, argv)),
      ...extraArgs
    ],
    ready: { line: spec.listening ?? /^listening (\d+)$/, strict: spec.listening === undefined },
    ...(cpu === undefined ? {} : { cpu })
  })
}

/** Runs the client; samples the server between the client's measure-start and measure-end lines. */
const runClient = (
  args: ReadonlyArray<string>,
  server: RunningServer,
  settings: Settings
): Promise<{ result: ClientResult; usage: Usage }> =>
  new Promise((resolve, reject) => {
    const all = [
      ...args,
      "--port",
      String(server.port),
      "--duration",
      String(settings.duration),
      "--warmup",
      String(settings.warmup)
    ]
    // taskset execs the client, so the child's pid (and CPU time) stays the client's.
    const child = settings.pin
      ? spawn("taskset", ["-c", "0", clientBinary, ...all], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(clientBinary, all, { stdio: ["ignore", "pipe", "pipe"] })
    let window: ReturnType<typeof sampleWindow> | undefined
    let usage: Usage | undefined
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line === "measure-start") {
        if (settings.callgrindFile !== undefined) switchCounting(server.pid, true)
        window = sampleWindow(server.pid, child.pid)
      } else if (line === "measure-end") {
        usage = window?.end()
        if (settings.callgrindFile !== undefined) switchCounting(server.pid, false)
      } else stderr += `${line}\n`
    })
    // Generous: opening 10,000 connections to a slow server can take a while.
    const killer = setTimeout(() => child.kill("SIGKILL"), (settings.duration + settings.warmup + 120) * 1000)
    child.on("exit", (code, signal) => {
      clearTimeout(killer)
      const measured = usage
      window?.end()
      try {
        if (code !== 0) throw new Error(`client exited with ${code ?? signal}`)
        if (measured === undefined) throw new Error("client never finished its measurement window")
        resolve({ result: JSON.parse(stdout) as ClientResult, usage: measured })
      } catch (error) {
        reject(new Error(`${String(error)}\n${stderr}${stdout}`))
      }
    })
  })

/**
 * One measurement: starts `server` fresh (with `serverArgs` after its own),
 * runs the client with `clientArgs`, stops the server.
 */
export const measure = async (
  round: number,
  server: string,
  clientArgs: ReadonlyArray<string>,
  settings: Settings,
  serverArgs: ReadonlyArray<string> = []
): Promise<Measurement> => {
  const base = { round, server }
  let running: RunningServer
  try {
    running = await startNamed(server, settings, serverArgs)
  } catch (error) {
    return { ...base, ok: false, failure: `server failed to start: ${String(error)}` }
  }
  const serverRssStartMb = rssMb(running.pid)
  try {
    const { result, usage } = await runClient(clientArgs, running, settings)
    const exited = running.child.exitCode !== null
    const stopped = await stopServer(running)
    const failure = exited
      ? `server exited during the run\n${running.stderr()}`
      : result.completed === 0
        ? "no request completed"
        : stopFailure(stopped, running.stderr())
    const accepted = Array.from(running.stderr().matchAll(/^accepted (\d+)$/gm), (match) => Number(match[1]))
    return {
      ...base,
      ok: failure === undefined,
      ...(failure === undefined ? {} : { failure }),
      client: result,
      serverRssStartMb,
      serverRssMb: usage.rssPeakMb,
      serverCpuPct: (usage.serverCpu / usage.wall) * 100,
      clientCpuPct: (result.cpu_s / result.duration_s) * 100,
      // What the machine was busy with besides this pair: high values mean a disturbed measurement.
      otherCpuPct: ((usage.machineCpu - usage.serverCpu - result.cpu_s) / usage.wall) * 100,
      // Per request completed in the window (the client counts only those).
      serverUserUs: (usage.serverUserCpu / result.completed) * 1e6,
      serverKernelUs: ((usage.serverCpu - usage.serverUserCpu) / result.completed) * 1e6,
      clientSleeps: usage.clientSleeps / result.completed,
      serverExitCode: stopped.code,
      serverStopSeconds: stopped.seconds,
      ...(accepted.length > 0 ? { accepted } : {})
    }
  } catch (error) {
    const stopped = await stopServer(running)
    return { ...base, ok: false, failure: String(error), serverExitCode: stopped.code }
  }
}

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`

/** One line about a measurement, for the progress log. */
export const describeMeasurement = (m: Measurement, unit: string): string => {
  const c = m.client
  return (
    (c === undefined
      ? "FAILED"
      : `${Math.round(c.rate)} ${unit}, p99 ${ms(c.p99_us)}, errors ${c.errors}, ` +
        `server RSS ${m.serverRssMb?.toFixed(1)} MB, server CPU ${m.serverCpuPct?.toFixed(0)}%, ` +
        `client CPU ${m.clientCpuPct?.toFixed(0)}%, other CPU ${m.otherCpuPct?.toFixed(0)}%, ` +
        `server ${m.serverUserUs?.toFixed(2)} + ${m.serverKernelUs?.toFixed(2)} µs (user + kernel) ` +
        `and client sleeps ${m.clientSleeps?.toFixed(2)} per ${unit.replace(/\/s$/, "")}, ` +
        `stopped in ${m.serverStopSeconds?.toFixed(1)} s` +
        (m.accepted === undefined ? "" : `, accepted ${m.accepted.join("/")}`)) +
    (m.failure === undefined ? "" : `\n  ${m.failure.trim().replaceAll("\n", "\n  ")}`)
  )
}
