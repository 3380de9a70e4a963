/**
 * Benchmark runner: `npm run bench -- [options]` (see `--help`).
 *
 * Builds the C load client (bench/client.c), then for each round, workload and
 * server (servers alternate, in a rotated order each round) starts the server
 * fresh as a child of this Node binary, runs the client against it, and samples
 * the server's RSS and CPU time over the client's measurement window. Prints a
 * markdown table of the median of the rounds, with ratios to the raw server
 * and to the floor server (the least an Effect callback costs), and how a
 * clustered server's connections were spread over its processes.
 * With `--callgrind DIR`, the servers run under valgrind's callgrind and a
 * table gives what each ran per request (bench/callgrind.ts).
 * With `--sweep`, runs the scaling sweep of bench/sweep.ts instead; with
 * `--protocol redis|memcached`, the protocol benchmark of bench/protocol.ts
 * (real clients against real servers, a hand-written baseline and the
 * examples). The pieces (servers, client, sampling) are in bench/harness.ts
 * and bench/process.ts.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { type CountedRun, callgrindFileOf, callgrindReport, countedRun } from "./callgrind.ts"
import {
  addBase,
  build,
  describeMeasurement,
  measure,
  median,
  type Settings,
  servers as serverSpecs
} from "./harness.ts"
import { type ProfiledRun, profileDirOf, profileReport, withCpuProfile } from "./profile.ts"
import { protocolMain } from "./protocolMain.ts"
import { protocols } from "./protocols.ts"
import { summarize, table, type Workload, type WorkloadMeasurement } from "./summary.ts"
import { reportSaved, runSweep, type SweepMeasurement } from "./sweep.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))

const usage = `usage: node bench/run.ts [options]
  --duration S      seconds measured per run (default 10; --sweep: 3; --quick: 1, --sweep --quick: 0.3)
  --warmup S        seconds of load before measuring (default 1; --quick: 0.2)
  --rounds N        rounds; servers alternate within a round (default 3; --sweep: 2; --quick: 1)
  --connections N   connections of the persistent workload, of the sweep's message sizes and of the protocol
                    clients (default 50; --quick: 20)
  --concurrency N   connections in flight in the connect and short workloads (default 50; --quick: 20)
  --messages N      requests per connection of the short workload, one at a time (default 20)
  --many N          connections of the many workload (default 10000; --quick: 200)
  --servers LIST    comma-separated (default: raw,floor,pool,pool-fiber,pool-sync,effect-socket), from:
${Object.entries(serverSpecs)
  .map(([name, spec]) => `                      ${name}: ${spec.about}`)
  .join("\n")}
  --workloads LIST  comma-separated, from persistent,connect,short,many (default: all)
                    persistent: --connections connections, each request after the last reply
                    connect: --concurrency cycles of connect, 1 request, close (the kernel's connect work dominates)
                    short: --concurrency cycles of connect, --messages requests one at a time, close
                    many: --many persistent connections
                    Tables give each rate over raw's and, when floor runs, over floor's, in the same round
  --node-flags=F    space-separated Node/V8 flags given to every server alike, e.g.
                    --node-flags=--max-semi-space-size=16 (default: none)
  --pin             run each server on CPU 1 and the client on CPU 0 (taskset; clustered servers are not pinned):
                    steadier ratios on a shared machine, at the cost of the server's GC threads sharing its CPU
  --sweep           the scaling sweep instead of the workloads: req/s, p99 and RSS against connections
                    (1 to 20k) and message size (16 B to 64 KiB, echoed), charts written to --charts
  --charts DIR      where --sweep and --protocol write their SVGs (default bench/charts; with --quick bench/build/charts)
  --sweep-from FILE with --sweep: no measuring, the charts and tables again from the --json of a sweep
  --protocol NAME   the protocol benchmark instead: ${Object.values(protocols)
    .map((p) => `${p.client} against ${p.name} servers (--protocol ${p.name})`)
    .join(",\n                    ")}:
                    the real server, a hand-written node:net baseline ("raw") and the example with an Effect
                    callback ("example") and a synchronous one ("example-sync"); --servers and --workloads pick among
${Object.values(protocols)
  .map(
    (p) =>
      `                      ${p.name}: ${Object.keys(p.servers).join(",")} and ${Object.keys(p.workloads).join(",")}`
  )
  .join("\n")}
  --profile DIR     every Node server runs with --cpu-prof into DIR/<workload>-<server>-round<N>/ (the workloads and
                    --protocol), and a table says where each one's busy time went (measured rates are then lower:
                    not for the measured run)
  --callgrind DIR   every server of the workloads runs under valgrind's callgrind, counting only in the client's
                    measurement window, into DIR/<workload>-<server>-round<N>.out, and a table gives each one's
                    instructions and simulated cache misses per request (repeatable where time is not; valgrind
                    slows a server about 30 times, so its rates mean nothing)
  --requests N      with --protocol: requests per test and run (default 100000; --quick: 2000; redis -P 16: 8 times that)
  --base DIR        an A/B of two builds: DIR is another work tree of this repository (e.g. \`git worktree add
                    DIR <commit>\`, then npm ci in it); each chosen server but raw also runs from DIR's build as
                    NAME@base, in the same rounds, and a table gives each server's rate over its @base twin's
  --json FILE       also write every measurement and the summary as JSON
  --quick           smoke run: small and short (with --sweep: two points per axis; with --protocol: no warm-up run);
                    exits 1 if a server fails or a workload completes nothing (or, --protocol, reports an error)`

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    connections: { type: "string" },
    concurrency: { type: "string" },
    messages: { type: "string" },
    many: { type: "string" },
    servers: { type: "string" },
    workloads: { type: "string" },
    json: { type: "string" },
    base: { type: "string" },
    "node-flags": { type: "string" },
    pin: { type: "boolean", default: false },
    sweep: { type: "boolean", default: false },
    "sweep-from": { type: "string" },
    charts: { type: "string" },
    protocol: { type: "string" },
    profile: { type: "string" },
    callgrind: { type: "string" },
    requests: { type: "string" },
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
  duration: num(opts.duration, opts.sweep ? 3 : 10, opts.sweep ? 0.3 : 1),
  warmup: num(opts.warmup, 1, 0.2),
  rounds: Math.max(1, num(opts.rounds, opts.sweep ? 2 : 3, 1)),
  connections: num(opts.connections, 50, 20),
  concurrency: num(opts.concurrency, 50, 20),
  messages: Math.max(1, num(opts.messages, 20, 20)),
  many: num(opts.many, 10_000, 200),
  // Every server gets the same flags, so ratios stay like for like.
  nodeFlags: (opts["node-flags"] ?? "").split(" ").filter((flag) => flag !== "")
}
const settings: Settings = {
  duration: config.duration,
  warmup: config.warmup,
  nodeFlags: config.nodeFlags,
  pin: opts.pin
}
if (opts.callgrind !== undefined && (opts.sweep || opts.protocol !== undefined)) {
  throw new Error("--callgrind is for the workloads, not --sweep or --protocol")
}
if (opts.protocol !== undefined) {
  const protocol = protocols[opts.protocol]
  if (protocol === undefined) throw new Error(`unknown protocol: ${opts.protocol}\n${usage}`)
  if (opts.pin) throw new Error("--pin is not for --protocol: the clients run many threads (memcslap) or one")
  process.exit(
    await protocolMain({
      protocol,
      servers: opts.servers?.split(","),
      workloads: opts.workloads?.split(","),
      rounds: config.rounds,
      quick: opts.quick,
      sizing: {
        requests: num(opts.requests, 100_000, 2000),
        clients: config.connections,
        nodeFlags: config.nodeFlags
      },
      chartDir: opts.charts ?? join(benchDir, opts.quick ? "build" : "", "charts"),
      json: opts.json,
      profile: opts.profile
    })
  )
}

const servers = (opts.servers ?? "raw,floor,pool,pool-fiber,pool-sync,effect-socket").split(",").map((name) => {
  if (serverSpecs[name] === undefined) throw new Error(`unknown server: ${name}\n${usage}`)
  return name
})
if (!servers.includes("raw")) console.error("note: without the raw server there are no ratios")

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
  // What connect no longer shows on a 2-core machine, where every server reaches the kernel's connect rate: the
  // cost of a connection's set-up and teardown, next to the cost of its messages.
  short: {
    name: "short",
    unit: "conn/s",
    args: ["--mode", "connect", "--concurrency", String(config.concurrency), "--messages", String(config.messages)]
  },
  many: { name: "many", unit: "req/s", args: ["--mode", "persistent", "--connections", String(config.many)] }
}
const workloads = (opts.workloads ?? "persistent,connect,short,many").split(",").map((name) => {
  const workload = allWorkloads[name]
  if (workload === undefined) throw new Error(`unknown workload: ${name}\n${usage}`)
  return workload
})

if (opts.pin && (Os.availableParallelism() < 2 || !existsSync("/usr/bin/taskset"))) {
  throw new Error("--pin needs 2 CPUs and taskset (/usr/bin/taskset)")
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

const sweepOptions = {
  servers,
  settings,
  rounds: config.rounds,
  quick: opts.quick,
  connections: config.connections,
  chartDir: opts.charts ?? join(benchDir, opts.quick ? "build" : "", "charts")
}
if (opts.sweep && opts["sweep-from"] !== undefined) {
  const saved = JSON.parse(readFileSync(opts["sweep-from"], "utf8")) as {
    meta: typeof meta
    measurements: ReadonlyArray<SweepMeasurement>
  }
  reportSaved(
    { ...sweepOptions, rounds: saved.meta.config.rounds, settings: { ...saved.meta.config, pin: false } },
    saved.measurements
  )
  process.exit(0)
}

build()
if (opts.base !== undefined) {
  if (opts.sweep || opts.protocol !== undefined)
    throw new Error("--base is for the workloads, not --sweep or --protocol")
  servers.push(
    ...addBase(
      opts.base,
      // raw and floor do not use the packages: their twins would measure the same program twice.
      servers.filter((name) => name !== "raw" && name !== "floor")
    )
  )
}
console.error(`bench: ${JSON.stringify(meta)}`)

if (opts.sweep) {
  const measurements = await runSweep(sweepOptions)
  if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify({ meta, measurements }, null, 2)}\n`)
  exitOnFailures(measurements.map((m) => ({ ...m, workload: `${m.axis}=${m.x}` })))
  process.exit(0)
}

const measurements: Array<WorkloadMeasurement> = []
// With --profile: where each measurement's CPU profile went.
const profiled: Array<ProfiledRun> = []
// With --callgrind: each measurement's counts, and where they went.
const counted: Array<CountedRun> = []
for (let round = 0; round < config.rounds; round++) {
  // Rotate the server order each round so no server always runs first (or right after a given one).
  const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)]
  for (const workload of workloads) {
    for (const server of order) {
      const profileDir = profileDirOf(opts.profile, workload.name, server, round + 1)
      const callgrindFile = callgrindFileOf(opts.callgrind, workload.name, server, round + 1)
      const runSettings = { ...settings, nodeFlags: withCpuProfile(settings.nodeFlags, profileDir), callgrindFile }
      const m = { ...(await measure(round + 1, server, workload.args, runSettings)), workload: workload.name }
      measurements.push(m)
      if (callgrindFile !== undefined) counted.push(...countedRun(m, callgrindFile))
      if (profileDir !== undefined)
        profiled.push({ workload: workload.name, server, round: round + 1, dir: profileDir })
      console.error(
        `round ${round + 1}/${config.rounds} ${workload.name} ${server}: ${describeMeasurement(m, workload.unit)}`
      )
    }
  }
}

// Connections each process of a clustered server accepted, per measurement: how evenly the kernel (reuseport) or
// the primary (handoff) spread them. The busiest process's share is 50% when even.
const spread = (all: ReadonlyArray<WorkloadMeasurement>): string => {
  const lines = all
    .filter((m) => (m.accepted?.length ?? 0) > 1)
    .map((m) => {
      const counts = m.accepted!
      const total = counts.reduce((sum, n) => sum + n, 0)
      const busiest = total === 0 ? 0 : (Math.max(...counts) / total) * 100
      return `| ${m.workload} | ${m.server} | ${m.round} | ${counts.join(" / ")} | ${busiest.toFixed(1)}% |`
    })
  return lines.length === 0
    ? ""
    : `\nConnections accepted per process:\n\n| workload | server | round | accepted | busiest process's share |\n| --- | --- | --- | --- | --- |\n${lines.join("\n")}\n`
}

// With --base: each server's rate over its @base twin's in the same round (they run back to back), per workload.
const abTable = (all: ReadonlyArray<WorkloadMeasurement>): string => {
  const rows = workloads.flatMap((workload) =>
    servers
      .filter((name) => servers.includes(`${name}@base`))
      .flatMap((name) => {
        const rate = (server: string, round: number) =>
          all.find((m) => m.workload === workload.name && m.server === server && m.round === round && m.ok)?.client
            ?.rate
        const ratios = Array.from({ length: config.rounds }, (_, i) => {
          const [after, before] = [rate(name, i + 1), rate(`${name}@base`, i + 1)]
          return after === undefined || before === undefined || before === 0 ? [] : [after / before]
        }).flat()
        if (ratios.length === 0) return []
        const faster = ratios.filter((r) => r > 1).length
        return [
          `| ${workload.name} | ${name} | ${median(ratios).toFixed(3)} | ${faster} of ${ratios.length} | ${ratios.map((r) => r.toFixed(2)).join(", ")} |`
        ]
      })
  )
  return rows.length === 0
    ? ""
    : `\nThis build over --base ${opts.base} (median of the rounds' ratios):\n\n| workload | server | this / base | faster in | per round |\n| --- | --- | --- | --- | --- |\n${rows.join("\n")}\n`
}

const summary = summarize(measurements, workloads, servers)
console.log(`
node ${meta.node} | CPU ${meta.cpu} | ${meta.cores} cores
command: ${meta.command}
${config.duration} s per measurement after ${config.warmup} s warmup; ${config.rounds} round(s), servers alternating in a rotated order each round.${opts.pin ? "\nPinned: each server on CPU 1 (clustered servers not pinned), the client on CPU 0." : ""}
Each server is started fresh for every measurement. Values are the median over the rounds (each column separately);
errors are the total over the rounds. Server RSS is the peak VmRSS during the measurement window (for "many": while
holding all ${config.many} connections). CPU % is of one core (a Node server can pass 100% with its GC and libuv
threads); "other CPU %" is the rest of the machine's busy time in the window (other processes, unattributed kernel
work): when it is high, the run was disturbed. An op is one unit of the rate (a request, a connection or a cycle):
"server µs per op" is the server's CPU per op in user space and in the kernel, "client sleeps per op" how often the
client went to sleep waiting (each a wake-up the server's next reply pays for in the kernel; BENCHMARKS.md, "Not
instructions but cache lines"). "same-round rate ratio" is the median of each round's rate over raw's
in that round (servers of a round run back to back, so this cancels drift between rounds)${
  servers.includes("floor")
    ? `; "vs floor" is the same
over floor's rate (floor: one fiber resumption and one Effect callback per message, nothing else; pool / floor is
what the pool's own bookkeeping costs)`
    : ""
}. Workloads: persistent = ${config.connections} connections,
connect = ${config.concurrency} connect/send/reply/close cycles in flight, short = ${config.concurrency} cycles in flight of connect,
${config.messages} requests one at a time, close (rate in connections, latency of the whole cycle), many = ${config.many} persistent connections.

${table(summary, workloads)}
${spread(measurements)}${abTable(measurements)}`)
if (opts.profile !== undefined) console.log(profileReport(opts.profile, profiled))
if (opts.callgrind !== undefined) console.log(callgrindReport(opts.callgrind, counted))

if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify({ meta, measurements, summary }, null, 2)}\n`)

exitOnFailures(measurements)

function exitOnFailures(measurements: ReadonlyArray<WorkloadMeasurement>): void {
  const failures = measurements.filter((m) => !m.ok)
  if (failures.length === 0) return
  console.error(
    `${failures.length} measurement(s) failed: ${failures.map((m) => `${m.workload}/${m.server}`).join(", ")}`
  )
  process.exit(1)
}
