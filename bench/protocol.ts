/**
 * The protocol benchmark (`npm run bench -- --protocol redis|memcached`):
 * the real client (`redis-benchmark`, `memcslap`) against the real server,
 * the hand-written `node:net` baseline and the example with both callback
 * kinds (bench/protocols.ts says which). Each round runs every workload
 * against every server, servers alternating in an order rotated each round,
 * each started fresh (the Node ones as children of this Node binary) and
 * warmed up with a short run of the same client before the measured one.
 * Prints a markdown table per workload and test (the median of the rounds,
 * same-round ratios against the baseline and the real server, every round's
 * rate), the targets of the issue, and writes a bar chart.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { barsSvg } from "./chart.ts"
import { median } from "./harness.ts"
import { freePort, type RunningServer, sampleWindow, startServer, stopFailure, stopServer } from "./process.ts"
import { profileDirOf, withCpuProfile } from "./profile.ts"
import {
  type ClientOutput,
  exampleSource,
  type Protocol,
  type ProtocolServer,
  type Sizing,
  type TestRate
} from "./protocols.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const repoDir = dirname(benchDir)

export interface ProtocolOptions {
  readonly protocol: Protocol
  readonly servers: ReadonlyArray<string>
  readonly workloads: ReadonlyArray<string>
  readonly rounds: number
  readonly sizing: Sizing
  /** Smoke run: no warm-up run. */
  readonly quick: boolean
  readonly chartDir: string
  /** Runs every Node server with `--cpu-prof`, writing into a directory per measurement under this one. */
  readonly profileDir?: string | undefined
}

export interface ProtocolMeasurement {
  readonly round: number
  readonly workload: string
  readonly server: string
  readonly ok: boolean
  readonly failure?: string
  readonly rates: ReadonlyArray<TestRate>
  /**
   * Over the measured client run, in % of one core: the server's CPU, the client's, and the rest of the machine's
   * busy time (other processes, unattributed kernel work: when it is high, the run was disturbed); the server's peak RSS.
   */
  readonly serverCpuPct?: number
  readonly clientCpuPct?: number
  readonly otherCpuPct?: number
  readonly serverRssMb?: number
  readonly seconds?: number
  readonly serverExitCode?: number | null
  /** With `--profile`: the directory the server's CPU profile went to (warm-up and measured run). */
  readonly profileDir?: string
}

/** Compiles the examples the run needs (packages/examples/src → bench/build/examples), after harness's build. */
export const buildExamples = (protocol: Protocol, servers: ReadonlyArray<string>): void => {
  const wanted = servers.some((name) => name.startsWith("example")) && existsSync(exampleSource(protocol.name))
  if (!wanted) return
  console.error(`building packages/examples/src/${protocol.name}.ts to JavaScript`)
  execFileSync(join(repoDir, "node_modules", ".bin", "tsc"), ["-p", join(benchDir, "tsconfig.examples.json")], {
    stdio: "inherit"
  })
}

/** Every program the run needs is on the PATH (CI installs them with .ci/require); a missing one fails the run. */
export const missingPrograms = (options: ProtocolOptions): Array<string> => {
  const programs = [options.protocol.client, ...options.servers.filter((name) => name === options.protocol.real)]
  const missing = programs.filter((program) => {
    try {
      execFileSync("sh", ["-c", 'command -v "$0"', program], { stdio: "ignore" })
      return false
    } catch {
      return true
    }
  })
  const notHere = options.servers.flatMap((name) => {
    const why = options.protocol.servers[name]?.missing?.()
    return why === undefined ? [] : [`${name}: ${why}`]
  })
  return [...missing.map((program) => `${program} is not installed`), ...notHere]
}

/**
 * Runs the client to its end and keeps what it printed. A shell runs it and then `times`, whose second line is the CPU
 * time of the shell's children: the client's, with all its threads (Node cannot read a finished child's rusage).
 */
const runClient = (client: string, args: ReadonlyArray<string>, timeoutSeconds: number): Promise<ClientOutput> =>
  new Promise((resolve) => {
    const child = spawn("sh", ["-c", '"$0" "$@"; status=$?; times >&2; exit $status', client, ...args], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8000)
    })
    // A client that hangs (redis-benchmark waits forever for a server that never answers) fails the run.
    const killer = setTimeout(() => child.kill("SIGKILL"), timeoutSeconds * 1000)
    child.on("close", (code, signal) => {
      clearTimeout(killer)
      const times = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\n$/.exec(stderr)
      const cpuSeconds =
        times === null
          ? Number.NaN
          : Number(times[5]) * 60 + Number(times[6]) + Number(times[7]) * 60 + Number(times[8])
      resolve({ code, signal, stdout, stderr: times === null ? stderr : stderr.slice(0, times.index), cpuSeconds })
    })
  })

/** Seconds a client run may take: a smoke run is small, a full one can take minutes on a slow server. */
const clientTimeout = (options: ProtocolOptions) => (options.quick ? 120 : 900)

/** One measurement: a fresh server, a warm-up run of the client, the measured run, SIGTERM. */
const measureOne = async (
  options: ProtocolOptions,
  round: number,
  workloadName: string,
  serverName: string
): Promise<ProtocolMeasurement> => {
  const { protocol, sizing } = options
  const profileDir = profileDirOf(options.profileDir, workloadName, serverName, round)
  const base = {
    round,
    workload: workloadName,
    server: serverName,
    rates: [],
    ...(profileDir === undefined ? {} : { profileDir })
  }
  // Only the Node servers take these flags.
  const launchSizing = { ...sizing, nodeFlags: withCpuProfile(sizing.nodeFlags, profileDir) }
  const workload = protocol.workloads[workloadName]!
  const server: ProtocolServer = protocol.servers[serverName]!
  let running: RunningServer
  try {
    running = await startServer(server.launch(await freePort(), launchSizing))
  } catch (error) {
    return { ...base, ok: false, failure: `server failed to start: ${String(error)}` }
  }
  if (!options.quick) {
    const warmup = await runClient(protocol.client, workload.args(running.port, sizing, true), clientTimeout(options))
    const warm = workload.parse(warmup, sizing, true)
    if (warm.failure !== undefined) {
      const stopped = await stopServer(running)
      return { ...base, ok: false, failure: `warm-up: ${warm.failure}`, serverExitCode: stopped.code }
    }
  }
  const window = sampleWindow(running.pid)
  const output = await runClient(protocol.client, workload.args(running.port, sizing, false), clientTimeout(options))
  const usage = window.end()
  const exited = running.child.exitCode !== null
  const stopped = await stopServer(running)
  const { rates, failure: clientFailure } = workload.parse(output, sizing, false)
  const failure =
    clientFailure ??
    (exited ? `server exited during the run\n${running.stderr()}` : stopFailure(stopped, running.stderr()))
  return {
    ...base,
    ok: failure === undefined,
    ...(failure === undefined ? {} : { failure }),
    rates,
    serverCpuPct: (usage.serverCpu / usage.wall) * 100,
    clientCpuPct: (output.cpuSeconds / usage.wall) * 100,
    otherCpuPct: ((usage.machineCpu - usage.serverCpu - output.cpuSeconds) / usage.wall) * 100,
    serverRssMb: usage.rssPeakMb,
    seconds: usage.wall,
    serverExitCode: stopped.code
  }
}

const describe = (m: ProtocolMeasurement): string =>
  (m.rates.length === 0 ? "FAILED" : m.rates.map((r) => `${r.test} ${Math.round(r.rate)}/s`).join(", ")) +
  (m.serverCpuPct === undefined
    ? ""
    : `; server CPU ${m.serverCpuPct.toFixed(0)}%, client CPU ${m.clientCpuPct?.toFixed(0)}%, other CPU ${m.otherCpuPct?.toFixed(0)}%, server RSS ${m.serverRssMb?.toFixed(1)} MB, ${m.seconds?.toFixed(1)} s`) +
  (m.failure === undefined ? "" : `\n  ${m.failure.trim().replaceAll("\n", "\n  ")}`)

/** Every round, workload and server; servers alternate in an order rotated each round. */
export const runProtocol = async (options: ProtocolOptions): Promise<Array<ProtocolMeasurement>> => {
  const { servers } = options
  const measurements: Array<ProtocolMeasurement> = []
  for (let round = 0; round < options.rounds; round++) {
    const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)]
    for (const workload of options.workloads) {
      for (const server of order) {
        const m = await measureOne(options, round + 1, workload, server)
        measurements.push(m)
        console.error(
          `${options.protocol.name} round ${round + 1}/${options.rounds} ${workload} ${server}: ${describe(m)}`
        )
      }
    }
  }
  return measurements
}

/** A server's rate of one test in one round, if that run succeeded. */
const rateOf = (
  all: ReadonlyArray<ProtocolMeasurement>,
  workload: string,
  server: string,
  round: number,
  test: string
) => {
  const m = all.find((x) => x.workload === workload && x.server === server && x.round === round && x.ok)
  return m?.rates.find((r) => r.test === test)?.rate
}

/** Median over the rounds of `server`'s rate over `base`'s in the same round (servers of a round run back to back). */
const roundRatio = (
  all: ReadonlyArray<ProtocolMeasurement>,
  workload: string,
  test: string,
  server: string,
  base: string,
  rounds: number
): number | undefined => {
  const ratios = Array.from({ length: rounds }, (_, i) => {
    const a = rateOf(all, workload, server, i + 1, test)
    const b = rateOf(all, workload, base, i + 1, test)
    return a !== undefined && b !== undefined && b > 0 ? a / b : undefined
  }).filter((r): r is number => r !== undefined)
  return ratios.length === 0 ? undefined : median(ratios)
}

const geometricMean = (xs: ReadonlyArray<number>) => Math.exp(xs.reduce((sum, x) => sum + Math.log(x), 0) / xs.length)

export interface ProtocolSummaryRow {
  readonly workload: string
  readonly test: string
  readonly server: string
  readonly rate: number | undefined
  readonly vsRaw: number | undefined
  readonly vsReal: number | undefined
  readonly rounds: ReadonlyArray<number | undefined>
}

export interface ProtocolTarget {
  readonly workload: string
  readonly server: string
  /** Median over the rounds of the geometric mean, over the workload's tests, of the same-round ratio to raw. */
  readonly ratio: number | undefined
  /** The lowest test's same-round ratio (median over rounds). */
  readonly lowest: number | undefined
  readonly target: number
  readonly met: boolean
}

/** The tables, the target check and the chart of a run's measurements. */
export const reportProtocol = (
  options: ProtocolOptions,
  all: ReadonlyArray<ProtocolMeasurement>
): { rows: Array<ProtocolSummaryRow>; targets: Array<ProtocolTarget>; markdown: string; chart: string } => {
  const { protocol, servers, rounds } = options
  const real = servers.includes(protocol.real) ? protocol.real : undefined
  const rows: Array<ProtocolSummaryRow> = []
  const testsOf = (workload: string) => [
    ...new Set(all.filter((m) => m.workload === workload).flatMap((m) => m.rates.map((r) => r.test)))
  ]
  for (const workload of options.workloads) {
    for (const test of testsOf(workload)) {
      for (const server of servers) {
        const each = Array.from({ length: rounds }, (_, i) => rateOf(all, workload, server, i + 1, test))
        const measured = each.filter((r): r is number => r !== undefined)
        rows.push({
          workload,
          test,
          server,
          rate: measured.length === 0 ? undefined : median(measured),
          vsRaw: roundRatio(all, workload, test, server, "raw", rounds),
          vsReal: real === undefined ? undefined : roundRatio(all, workload, test, server, real, rounds),
          rounds: each
        })
      }
    }
  }
  const targets: Array<ProtocolTarget> = []
  for (const workload of options.workloads) {
    for (const [server, target] of Object.entries(protocol.workloads[workload]!.targets)) {
      if (!servers.includes(server) || !servers.includes("raw")) continue
      const tests = testsOf(workload)
      const perRound = Array.from({ length: rounds }, (_, i) => {
        const ratios = tests.map((test) => {
          const a = rateOf(all, workload, server, i + 1, test)
          const b = rateOf(all, workload, "raw", i + 1, test)
          return a !== undefined && b !== undefined && b > 0 ? a / b : undefined
        })
        return ratios.every((r) => r !== undefined) && ratios.length > 0 ? geometricMean(ratios) : undefined
      }).filter((r): r is number => r !== undefined)
      const ratio = perRound.length === 0 ? undefined : median(perRound)
      const lowests = rows
        .filter((row) => row.workload === workload && row.server === server && row.vsRaw !== undefined)
        .map((row) => row.vsRaw!)
      const lowest = lowests.length === 0 ? undefined : Math.min(...lowests)
      targets.push({ workload, server, ratio, lowest, target, met: ratio !== undefined && ratio >= target })
    }
  }
  const fixed = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(2))
  const count = (x: number | undefined) => (x === undefined ? "failed" : String(Math.round(x)))
  const header = [
    "workload",
    "test",
    "server",
    "req/s (median)",
    "same-round ratio vs raw",
    ...(real === undefined ? [] : [`same-round ratio vs ${real}`]),
    "every round (req/s)"
  ]
  const table = [
    header,
    header.map(() => "---"),
    ...rows.map((row) => [
      row.workload,
      row.test,
      row.server,
      count(row.rate),
      fixed(row.vsRaw),
      ...(real === undefined ? [] : [fixed(row.vsReal)]),
      row.rounds.map(count).join(" / ")
    ])
  ]
  const targetTable = [
    ["workload", "server", "same-round ratio vs raw (all tests)", "lowest test", "target", "met"],
    ["---", "---", "---", "---", "---", "---"],
    ...targets.map((t) => [
      t.workload,
      t.server,
      fixed(t.ratio),
      fixed(t.lowest),
      `>= ${t.target.toFixed(2)}`,
      t.ratio === undefined ? "not measured" : t.met ? "yes" : "**no**"
    ])
  ]
  const usage = (pick: (m: ProtocolMeasurement) => number | undefined, ok: ReadonlyArray<ProtocolMeasurement>) => {
    const values = ok.map(pick).filter((x): x is number => x !== undefined && Number.isFinite(x))
    return values.length === 0 ? "–" : median(values).toFixed(0)
  }
  const usageTable = [
    ["workload", "server", "server CPU %", "client CPU %", "other CPU %", "server RSS MB"],
    ["---", "---", "---", "---", "---", "---"],
    ...options.workloads.flatMap((workload) =>
      servers.map((server) => {
        const ok = all.filter((m) => m.workload === workload && m.server === server && m.ok)
        return [
          workload,
          server,
          usage((m) => m.serverCpuPct, ok),
          usage((m) => m.clientCpuPct, ok),
          usage((m) => m.otherCpuPct, ok),
          usage((m) => m.serverRssMb, ok)
        ]
      })
    )
  ]
  const markdown = [table, targetTable, usageTable]
    .map((cells) => cells.map((line) => `| ${line.join(" | ")} |`).join("\n"))
    .join("\n\n")
  mkdirSync(options.chartDir, { recursive: true })
  const chart = join(options.chartDir, `protocol-${protocol.name}.svg`)
  writeFileSync(
    chart,
    barsSvg({
      title: `${protocol.client} against ${protocol.name} servers: req/s, median of ${rounds} round(s), ${options.sizing.clients} connections`,
      panels: options.workloads.map((workload) => {
        const tests = testsOf(workload)
        return {
          title: workload,
          groups: tests,
          format: (y: number) => (y >= 1000 ? `${y / 1000}k` : String(y)),
          series: servers.map((server) => ({
            name: server,
            values: tests.map(
              (test) =>
                rows.find((row) => row.workload === workload && row.test === test && row.server === server)?.rate
            )
          }))
        }
      })
    })
  )
  return { rows, targets, markdown, chart }
}
