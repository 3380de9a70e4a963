/**
 * What the benchmark runs are made of (bench/run.ts and bench/sweep.ts): the
 * servers and how to start them, the C load client, sampling a server's RSS
 * and CPU over the client's measurement window, and one measurement: a fresh
 * server, the client against it, then SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

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
  pool: { file: join(buildDir, "pool.js"), about: "NodeTcpServer + PoolManager, an Effect callback" },
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
}

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100

/** A process and its descendants (a clustered server's workers are children of its primary). */
const processTree = (pid: number): Array<number> => {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    try {
      const children = readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, "utf8").trim()
      if (children !== "") pids.push(...children.split(" ").map(Number))
    } catch {
      // gone, or not a Linux with /proc/<pid>/task/<tid>/children
    }
  }
  return pids
}

/** utime + stime of one process, in seconds (fields 14 and 15 of /proc/<pid>/stat), or NaN if it is gone. */
const processCpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name may contain spaces; the fields we want come after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

/** VmRSS of one process in MB, or 0 if it is gone. */
const processRssMb = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? 0 : Number(match[1]) / 1024
  } catch {
    return 0
  }
}

/** utime + stime of a process and its descendants, in seconds, or NaN if it is gone. */
const cpuSeconds = (pid: number): number => processTree(pid).reduce((sum, one) => sum + processCpuSeconds(one), 0)

/** VmRSS of a process and its descendants in MB, or 0 if it is gone. */
const rssMb = (pid: number): number => processTree(pid).reduce((sum, one) => sum + processRssMb(one), 0)

/** Busy CPU seconds of the whole machine, all cores (first line of /proc/stat, minus idle and iowait). */
const machineBusySeconds = (): number => {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
    .split("\n", 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / clockTicks
}

/** The hard limit of open files of a process started here: caps the connections a run can hold. */
export const fileLimit = (): number =>
  Number(execFileSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim()) || 1024

/** Compiles the packages, the bin and the server programs to JavaScript (a few seconds). */
export const build = (): void => {
  const tsc = join(repoDir, "node_modules", ".bin", "tsc")
  console.error("building packages/core, packages/node (with its bin) and bench/servers to JavaScript")
  for (const config of [
    "packages/core/tsconfig.build.json",
    "packages/node/tsconfig.build.json",
    "packages/node/tsconfig.bin.json",
    "bench/tsconfig.build.json"
  ]) {
    execFileSync(tsc, ["-p", join(repoDir, config)], { stdio: "inherit" })
  }
  if (existsSync(clientBinary) && statSync(clientBinary).mtimeMs >= statSync(clientSource).mtimeMs) return
  mkdirSync(dirname(clientBinary), { recursive: true })
  console.error(`building ${clientBinary}`)
  execFileSync("cc", ["-O2", "-o", clientBinary, clientSource], { stdio: "inherit" })
}

interface RunningServer {
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  readonly stderr: () => string
  /** Resolves once the process exited and its output is read to the end. */
  readonly closed: Promise<number | null>
}

// With --pin: the server on CPU 1, the client on CPU 0 (a clustered server needs both, so it is left alone).
const pinned = (settings: Settings, cpu: number, spec?: ServerSpec): Array<string> =>
  settings.pin && (spec?.processes ?? 1) === 1 ? ["taskset", "-c", String(cpu)] : []

/** Starts a server and waits for the line that says its port. */
const startServer = (name: string, settings: Settings, extraArgs: ReadonlyArray<string>): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const spec = servers[name]!
    // The shell raises the soft fd limit to the hard one, then execs node, so the pid is the server's.
    const child = spawn(
      "sh",
      [
        "-c",
        'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        ...pinned(settings, 1, spec),
        process.execPath,
        ...settings.nodeFlags,
        ...(spec.nodeFlags ?? []),
        spec.file,
        ...(spec.args ?? []),
        ...extraArgs
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8000)
    })
    const closed = new Promise<number | null>((done) => child.once("close", (code) => done(code)))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${name} server did not say where it listens within 20 s\n${stderr}`))
    }, 20_000)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} server exited before listening (code ${code}, signal ${signal})\n${stderr}`))
    })
    const pattern = spec.listening ?? /^listening (\d+)$/
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      const match = pattern.exec(line)
      if (match?.[1] === undefined) {
        if (spec.listening !== undefined) return // a log line before the one we wait for
        child.kill("SIGKILL")
        reject(new Error(`${name} server printed "${line}" instead of "listening <port>"\n${stderr}`))
        return
      }
      clearTimeout(timer)
      lines.removeAllListeners("line")
      // Keep reading, so a chatty server never blocks on a full pipe.
      child.stdout!.resume()
      if (child.pid === undefined) return reject(new Error(`${name} server has no pid`))
      resolve({ child, pid: child.pid, port: Number(match[1]), stderr: () => stderr, closed })
    })
  })

/**
 * Sends SIGTERM and waits for the exit and the end of its output; SIGKILL
 * after 30 s (closing 10,000 connections can take Effect-based servers
 * several seconds on a busy machine).
 */
const stopServer = async (server: RunningServer): Promise<{ code: number | null; seconds: number }> => {
  server.child.removeAllListeners("exit")
  const start = performance.now()
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 30_000)
  if (server.child.exitCode === null) server.child.kill("SIGTERM")
  const code = await server.closed
  clearTimeout(timer)
  return { code, seconds: (performance.now() - start) / 1000 }
}

interface Window {
  cpuStart: number
  cpuEnd: number
  machineStart: number
  machineEnd: number
  wallStart: number
  wallEnd: number
  rssPeak: number
}

/** Runs the client; samples the server between the client's measure-start and measure-end lines. */
const runClient = (
  args: ReadonlyArray<string>,
  server: RunningServer,
  settings: Settings
): Promise<{ result: ClientResult; window: Window }> =>
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
    const window: Window = {
      cpuStart: 0,
      cpuEnd: 0,
      machineStart: 0,
      machineEnd: 0,
      wallStart: 0,
      wallEnd: 0,
      rssPeak: 0
    }
    let sampler: NodeJS.Timeout | undefined
    const sample = () => {
      window.rssPeak = Math.max(window.rssPeak, rssMb(server.pid))
    }
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line === "measure-start") {
        window.cpuStart = cpuSeconds(server.pid)
        window.machineStart = machineBusySeconds()
        window.wallStart = performance.now()
        sample()
        sampler = setInterval(sample, 200)
      } else if (line === "measure-end") {
        window.cpuEnd = cpuSeconds(server.pid)
        window.machineEnd = machineBusySeconds()
        window.wallEnd = performance.now()
        sample()
        clearInterval(sampler)
      } else {
        stderr += `${line}\n`
      }
    })
    // Generous: opening 10,000 connections to a slow server can take a while.
    const killer = setTimeout(() => child.kill("SIGKILL"), (settings.duration + settings.warmup + 120) * 1000)
    child.on("exit", (code, signal) => {
      clearTimeout(killer)
      clearInterval(sampler)
      try {
        if (code !== 0) throw new Error(`client exited with ${code ?? signal}`)
        if (window.wallEnd === 0) throw new Error("client never finished its measurement window")
        resolve({ result: JSON.parse(stdout) as ClientResult, window })
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
    running = await startServer(server, settings, serverArgs)
  } catch (error) {
    return { ...base, ok: false, failure: `server failed to start: ${String(error)}` }
  }
  const serverRssStartMb = rssMb(running.pid)
  try {
    const { result, window } = await runClient(clientArgs, running, settings)
    const wall = (window.wallEnd - window.wallStart) / 1000
    const exited = running.child.exitCode !== null
    const stopped = await stopServer(running)
    const failure = exited
      ? `server exited during the run\n${running.stderr()}`
      : result.completed === 0
        ? "no request completed"
        : stopped.code !== 0
          ? `server did not exit cleanly on SIGTERM (exit code ${stopped.code})\n${running.stderr()}`
          : undefined
    const accepted = Array.from(running.stderr().matchAll(/^accepted (\d+)$/gm), (match) => Number(match[1]))
    return {
      ...base,
      ok: failure === undefined,
      ...(failure === undefined ? {} : { failure }),
      client: result,
      serverRssStartMb,
      serverRssMb: window.rssPeak,
      serverCpuPct: ((window.cpuEnd - window.cpuStart) / wall) * 100,
      clientCpuPct: (result.cpu_s / result.duration_s) * 100,
      // What the machine was busy with besides this pair: high values mean a disturbed measurement.
      otherCpuPct:
        ((window.machineEnd - window.machineStart - (window.cpuEnd - window.cpuStart) - result.cpu_s) / wall) * 100,
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
        `stopped in ${m.serverStopSeconds?.toFixed(1)} s` +
        (m.accepted === undefined ? "" : `, accepted ${m.accepted.join("/")}`)) +
    (m.failure === undefined ? "" : `\n  ${m.failure.trim().replaceAll("\n", "\n  ")}`)
  )
}
