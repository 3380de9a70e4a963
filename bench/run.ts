/**
 * Benchmark runner: `npm run bench -- [options]` (see `--help`).
 *
 * Builds the C load client (bench/client.c), then for each round, workload and
 * server (servers alternate, in a rotated order each round) starts the server
 * fresh as a child of this Node binary, runs the client against it, and samples
 * the server's RSS and CPU time over the client's measurement window. Prints a
 * markdown table of the median of the rounds, with ratios to the raw server.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const benchDir = dirname(fileURLToPath(import.meta.url))
const clientSource = join(benchDir, "client.c")
const clientBinary = join(benchDir, "bin", "client")

const repoDir = dirname(benchDir)
const buildDir = join(benchDir, "build")

// The servers run as compiled JavaScript, as they would in production: the
// packages from their dist/ (as an installed package resolves) and the
// server programs from bench/build/. Running .ts through Node's type stripping
// would add its compiler's memory to every server's RSS.
const serverSources: Record<string, string> = {
  raw: join(benchDir, "servers", "raw.ts"),
  pool: join(benchDir, "servers", "pool.ts"),
  effect: join(benchDir, "servers", "effect-socket.ts"),
  pool2: join(benchDir, "servers", "pool-cluster.ts"),
  poolsync: join(benchDir, "servers", "pool-sync.ts")
}
const serverFiles: Record<string, string> = {
  raw: join(buildDir, "raw.js"),
  pool: join(buildDir, "pool.js"),
  effect: join(buildDir, "effect-socket.js"),
  pool2: join(buildDir, "pool-cluster.js"),
  poolsync: join(buildDir, "pool-sync.js")
}

const usage = `usage: node bench/run.ts [options]
  --duration S      seconds measured per run (default 10; --quick: 1)
  --warmup S        seconds of load before measuring (default 1; --quick: 0.2)
  --rounds N        rounds; servers alternate within a round (default 3; --quick: 1)
  --connections N   connections of the persistent workload (default 50; --quick: 20)
  --concurrency N   connects in flight in the connect workload (default 50; --quick: 20)
  --many N          connections of the many workload (default 10000; --quick: 200)
  --servers LIST    comma-separated, from raw,pool,poolsync,effect,pool2 (default: raw,pool,poolsync,effect;
                    poolsync is the pool server with a PoolManager.syncCallback; pool2 is the pool server in
                    2 processes with node:cluster)
  --workloads LIST  comma-separated, from persistent,connect,many (default: all)
  --node-flags=F    space-separated Node/V8 flags given to every server alike, e.g.
                    --node-flags=--max-semi-space-size=16 (default: none)
  --pin             run each server on CPU 1 and the client on CPU 0 (taskset; pool2 is not pinned):
                    steadier ratios on a shared machine, at the cost of the server's GC threads sharing its CPU
  --json FILE       also write every measurement and the summary as JSON
  --quick           smoke run: small and short; exits 1 if a server fails or a workload completes nothing`

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    connections: { type: "string" },
    concurrency: { type: "string" },
    many: { type: "string" },
    servers: { type: "string" },
    workloads: { type: "string" },
    json: { type: "string" },
    "node-flags": { type: "string" },
    pin: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", default: false }
  }
})
if (opts.help) {
  console.log(usage)
  process.exit(0)
}

const num = (value: string | undefined, normal: number, quick: number): number => {
  if (value === undefined) return opts.quick ? quick : normal
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${value}\n${usage}`)
  return n
}
const config = {
  duration: num(opts.duration, 10, 1),
  warmup: num(opts.warmup, 1, 0.2),
  rounds: Math.max(1, num(opts.rounds, 3, 1)),
  connections: num(opts.connections, 50, 20),
  concurrency: num(opts.concurrency, 50, 20),
  many: num(opts.many, 10_000, 200),
  // Every server gets the same flags, so ratios stay like for like.
  nodeFlags: (opts["node-flags"] ?? "").split(" ").filter((flag) => flag !== "")
}
const servers = (opts.servers ?? "raw,pool,poolsync,effect").split(",").filter((name) => {
  const file = serverSources[name]
  if (file === undefined) throw new Error(`unknown server: ${name}\n${usage}`)
  // Without --servers, skip a server whose program is not written yet.
  if (!existsSync(file) && opts.servers === undefined) {
    console.error(`note: ${file} does not exist, skipping the ${name} server`)
    return false
  }
  return true
})

interface Workload {
  readonly name: string
  readonly unit: string
  readonly args: ReadonlyArray<string>
}
const allWorkloads: Record<string, Workload> = {
  persistent: {
    name: "persistent",
    unit: "req/s",
    args: ["--mode", "persistent", "--connections", String(config.connections)]
  },
  connect: {
    name: "connect",
    unit: "conn/s",
    args: ["--mode", "connect", "--concurrency", String(config.concurrency)]
  },
  many: { name: "many", unit: "req/s", args: ["--mode", "persistent", "--connections", String(config.many)] }
}
const workloads = (opts.workloads ?? "persistent,connect,many").split(",").map((name) => {
  const workload = allWorkloads[name]
  if (workload === undefined) throw new Error(`unknown workload: ${name}\n${usage}`)
  return workload
})

/** What the C client prints (one JSON line). */
interface ClientResult {
  readonly mode: string
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

interface Measurement {
  readonly round: number
  readonly workload: string
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

/** utime + stime of a process and its descendants, in seconds, or NaN if it is gone. */
const cpuSeconds = (pid: number): number => processTree(pid).reduce((sum, one) => sum + processCpuSeconds(one), 0)

/** VmRSS of a process and its descendants in MB, or 0 if it is gone. */
const rssMb = (pid: number): number => processTree(pid).reduce((sum, one) => sum + processRssMb(one), 0)

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

/** Compiles the packages and the server programs to JavaScript (a few seconds). */
const buildServers = (): void => {
  const tsc = join(repoDir, "node_modules", ".bin", "tsc")
  console.error("building packages/core, packages/node and bench/servers to JavaScript")
  for (const project of ["packages/core", "packages/node", "bench"]) {
    execFileSync(tsc, ["-p", join(repoDir, project, "tsconfig.build.json")], { stdio: "inherit" })
  }
}

const buildClient = (): void => {
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
}

// With --pin: the server on CPU 1, the client on CPU 0 (a clustered server needs both, so it is left alone).
const pinned = (cpu: number, name: string): Array<string> =>
  opts.pin && name !== "pool2" ? ["taskset", "-c", String(cpu)] : []
if (opts.pin && (Os.availableParallelism() < 2 || !existsSync("/usr/bin/taskset"))) {
  throw new Error("--pin needs 2 CPUs and taskset (/usr/bin/taskset)")
}

/** Starts a server and waits for its `listening <port>` line. */
const startServer = (name: string): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    // The shell raises the soft fd limit to the hard one, then execs node, so the pid is the server's.
    const child = spawn(
      "sh",
      [
        "-c",
        'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        ...pinned(1, name),
        process.execPath,
        ...config.nodeFlags,
        serverFiles[name]!
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000)
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${name} server did not print "listening <port>" within 20 s\n${stderr}`))
    }, 20_000)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} server exited before listening (code ${code}, signal ${signal})\n${stderr}`))
    })
    createInterface({ input: child.stdout! }).once("line", (line) => {
      clearTimeout(timer)
      const match = /^listening (\d+)$/.exec(line)
      if (match?.[1] === undefined || child.pid === undefined) {
        child.kill("SIGKILL")
        reject(new Error(`${name} server printed "${line}" instead of "listening <port>"\n${stderr}`))
        return
      }
      resolve({ child, pid: child.pid, port: Number(match[1]), stderr: () => stderr })
    })
  })

/**
 * Sends SIGTERM and waits for the exit; SIGKILL after 30 s (closing 10,000
 * connections can take Effect-based servers several seconds on a busy machine).
 */
const stopServer = (server: RunningServer): Promise<{ code: number | null; seconds: number }> =>
  new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve({ code: server.child.exitCode, seconds: 0 })
    const start = performance.now()
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 30_000)
    server.child.removeAllListeners("exit")
    server.child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, seconds: (performance.now() - start) / 1000 })
    })
    server.child.kill("SIGTERM")
  })

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
const runClient = (workload: Workload, server: RunningServer): Promise<{ result: ClientResult; window: Window }> =>
  new Promise((resolve, reject) => {
    const args = [
      ...workload.args,
      "--port",
      String(server.port),
      "--duration",
      String(config.duration),
      "--warmup",
      String(config.warmup)
    ]
    // taskset execs the client, so the child's pid (and CPU time) stays the client's.
    const child = opts.pin
      ? spawn("taskset", ["-c", "0", clientBinary, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(clientBinary, args, { stdio: ["ignore", "pipe", "pipe"] })
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
    const killer = setTimeout(() => child.kill("SIGKILL"), (config.duration + config.warmup + 120) * 1000)
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

const measure = async (round: number, workload: Workload, name: string): Promise<Measurement> => {
  const base = { round, workload: workload.name, server: name }
  let server: RunningServer
  try {
    server = await startServer(name)
  } catch (error) {
    return { ...base, ok: false, failure: `server failed to start: ${String(error)}` }
  }
  const serverRssStartMb = rssMb(server.pid)
  try {
    const { result, window } = await runClient(workload, server)
    const wall = (window.wallEnd - window.wallStart) / 1000
    const exited = server.child.exitCode !== null
    const stopped = await stopServer(server)
    const failure = exited
      ? `server exited during the run\n${server.stderr()}`
      : result.completed === 0
        ? "no request completed"
        : stopped.code !== 0
          ? `server did not exit cleanly on SIGTERM (exit code ${stopped.code})\n${server.stderr()}`
          : undefined
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
      serverStopSeconds: stopped.seconds
    }
  } catch (error) {
    const stopped = await stopServer(server)
    return { ...base, ok: false, failure: String(error), serverExitCode: stopped.code }
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Summary {
  readonly workload: string
  readonly server: string
  readonly runs: number
  readonly rate: number
  readonly p50_us: number
  readonly p99_us: number
  readonly errors: number
  readonly serverRssMb: number
  readonly serverCpuPct: number
  readonly clientCpuPct: number
  readonly otherCpuPct: number
  /**
   * Median over the rounds of this server's rate divided by raw's in the same
   * round. Servers of a round run back to back, so this cancels most of the
   * drift of a shared machine between rounds.
   */
  readonly roundRatio: number | undefined
}

const summarize = (measurements: ReadonlyArray<Measurement>): Array<Summary> => {
  const out: Array<Summary> = []
  for (const workload of workloads) {
    for (const server of servers) {
      // Runs that completed requests, and whose server lived through the window (else its CPU is unknown).
      const ok = measurements.filter(
        (m) =>
          m.workload === workload.name &&
          m.server === server &&
          (m.client?.completed ?? 0) > 0 &&
          Number.isFinite(m.serverCpuPct)
      )
      if (ok.length === 0) continue
      const pick = (f: (m: Measurement) => number) => median(ok.map(f))
      const ratios = ok.flatMap((m) => {
        const base = measurements.find(
          (r) => r.workload === workload.name && r.server === "raw" && r.round === m.round && r.client !== undefined
        )
        return base !== undefined && base.client!.rate > 0 ? [m.client!.rate / base.client!.rate] : []
      })
      out.push({
        workload: workload.name,
        server,
        runs: ok.length,
        rate: pick((m) => m.client!.rate),
        p50_us: pick((m) => m.client!.p50_us),
        p99_us: pick((m) => m.client!.p99_us),
        errors: ok.reduce((sum, m) => sum + m.client!.errors, 0),
        serverRssMb: pick((m) => m.serverRssMb!),
        serverCpuPct: pick((m) => m.serverCpuPct!),
        clientCpuPct: pick((m) => m.clientCpuPct!),
        otherCpuPct: pick((m) => m.otherCpuPct!),
        roundRatio: ratios.length > 0 ? median(ratios) : undefined
      })
    }
  }
  return out
}

const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`
const ratio = (value: number, base: number | undefined) =>
  base === undefined || base === 0 ? "–" : (value / base).toFixed(2)

const table = (summary: ReadonlyArray<Summary>): string => {
  const header = [
    "workload",
    "server",
    "rate",
    "p50",
    "p99",
    "errors",
    "server RSS MB",
    "server CPU %",
    "client CPU %",
    "rate ratio vs raw",
    "same-round rate ratio",
    "p99 ratio vs raw",
    "RSS ratio vs raw",
    "other CPU %"
  ]
  const rows = summary.map((s) => {
    const raw = summary.find((r) => r.workload === s.workload && r.server === "raw")
    const unit = allWorkloads[s.workload]!.unit
    return [
      s.workload,
      s.server,
      `${Math.round(s.rate)} ${unit}`,
      ms(s.p50_us),
      ms(s.p99_us),
      String(s.errors),
      s.serverRssMb.toFixed(1),
      s.serverCpuPct.toFixed(0),
      s.clientCpuPct.toFixed(0),
      ratio(s.rate, raw?.rate),
      s.roundRatio === undefined ? "–" : s.roundRatio.toFixed(2),
      ratio(s.p99_us, raw?.p99_us),
      ratio(s.serverRssMb, raw?.serverRssMb),
      s.otherCpuPct.toFixed(0)
    ]
  })
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
}

const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? Os.cpus()[0]?.model
const meta = {
  node: process.version,
  cpu: cpuModel,
  cores: Os.availableParallelism(),
  command: [process.execPath, ...process.argv.slice(1)].join(" "),
  config,
  servers,
  workloads: workloads.map((w) => w.name)
}

buildClient()
buildServers()
console.error(`bench: ${JSON.stringify(meta)}`)
const measurements: Array<Measurement> = []
for (let round = 0; round < config.rounds; round++) {
  // Rotate the server order each round so no server always runs first (or right after a given one).
  const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)]
  for (const workload of workloads) {
    for (const server of order) {
      const m = await measure(round + 1, workload, server)
      measurements.push(m)
      const c = m.client
      console.error(
        `round ${round + 1}/${config.rounds} ${workload.name} ${server}: ` +
          (c === undefined
            ? "FAILED"
            : `${Math.round(c.rate)} ${workload.unit}, p99 ${ms(c.p99_us)}, errors ${c.errors}, ` +
              `server RSS ${m.serverRssMb?.toFixed(1)} MB, server CPU ${m.serverCpuPct?.toFixed(0)}%, ` +
              `client CPU ${m.clientCpuPct?.toFixed(0)}%, other CPU ${m.otherCpuPct?.toFixed(0)}%, stopped in ${m.serverStopSeconds?.toFixed(1)} s`) +
          (m.failure === undefined ? "" : `\n  ${m.failure.trim().replaceAll("\n", "\n  ")}`)
      )
    }
  }
}

const summary = summarize(measurements)
console.log(`
node ${meta.node} | CPU ${meta.cpu} | ${meta.cores} cores
command: ${meta.command}
${config.duration} s per measurement after ${config.warmup} s warmup; ${config.rounds} round(s), servers alternating in a rotated order each round.${opts.pin ? "\nPinned: each server on CPU 1 (pool2 not pinned), the client on CPU 0." : ""}
Each server is started fresh for every measurement. Values are the median over the rounds (each column separately);
errors are the total over the rounds. Server RSS is the peak VmRSS during the measurement window (for "many": while
holding all ${config.many} connections). CPU % is of one core (a Node server can pass 100% with its GC and libuv
threads); "other CPU %" is the rest of the machine's busy time in the window (other processes, unattributed kernel
work): when it is high, the run was disturbed. "same-round rate ratio" is the median of each round's rate over raw's
in that round (servers of a round run back to back, so this cancels drift between rounds). Workloads: persistent = ${config.connections} connections,
connect = ${config.concurrency} connect/send/reply/close cycles in flight, many = ${config.many} persistent connections.

${table(summary)}
`)

if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify({ meta, measurements, summary }, null, 2)}\n`)

const failures = measurements.filter((m) => !m.ok)
if (failures.length > 0) {
  console.error(
    `${failures.length} measurement(s) failed: ${failures.map((m) => `${m.workload}/${m.server}`).join(", ")}`
  )
  process.exit(1)
}
