/**
 * `npm run bench -- --protocol redis|memcached` from bench/run.ts: checks the
 * programs and the examples are there (a missing one fails the run, it is
 * never skipped), builds, runs bench/protocol.ts, prints its tables, writes
 * the chart and `--json`, and says the exit code: 1 if anything failed.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import { resolve } from "node:path"
import { build } from "./harness.ts"
import { profileReport } from "./profile.ts"
import { buildExamples, missingPrograms, type ProtocolOptions, reportProtocol, runProtocol } from "./protocol.ts"
import type { Protocol, Sizing } from "./protocols.ts"

export interface ProtocolMainOptions {
  readonly protocol: Protocol
  /** Default: all of the protocol's. */
  readonly servers: ReadonlyArray<string> | undefined
  readonly workloads: ReadonlyArray<string> | undefined
  readonly rounds: number
  readonly quick: boolean
  readonly sizing: Sizing
  readonly chartDir: string
  readonly json: string | undefined
  /** `--profile DIR`: every Node server runs with `--cpu-prof` into DIR, and a table says where its time went. */
  readonly profile: string | undefined
}

const pick = (kind: string, given: ReadonlyArray<string> | undefined, known: Record<string, unknown>) => {
  const names = given ?? Object.keys(known)
  for (const name of names) {
    if (known[name] === undefined) throw new Error(`unknown ${kind}: ${name} (known: ${Object.keys(known).join(", ")})`)
  }
  return names
}

/** Runs the protocol benchmark; returns the process's exit code. */
export const protocolMain = async (main: ProtocolMainOptions): Promise<number> => {
  const { protocol } = main
  const options: ProtocolOptions = {
    protocol,
    servers: pick("server", main.servers, protocol.servers),
    workloads: pick("workload", main.workloads, protocol.workloads),
    rounds: main.rounds,
    sizing: main.sizing,
    quick: main.quick,
    chartDir: main.chartDir,
    profileDir: main.profile === undefined ? undefined : resolve(main.profile)
  }
  if (!options.servers.includes("raw")) console.error("note: without the raw server there are no ratios")
  const missing = missingPrograms(options)
  if (missing.length > 0) {
    console.error(`cannot run the ${protocol.name} benchmark:\n  ${missing.join("\n  ")}`)
    return 1
  }
  build()
  buildExamples(protocol, options.servers)
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? Os.cpus()[0]?.model
  const meta = {
    node: process.version,
    cpu,
    cores: Os.availableParallelism(),
    loadAverage: Os.loadavg(),
    started: new Date().toISOString(),
    command: [process.execPath, ...process.argv.slice(1)].join(" "),
    protocol: protocol.name,
    servers: options.servers,
    workloads: options.workloads,
    rounds: options.rounds,
    sizing: options.sizing,
    quick: options.quick
  }
  console.error(`bench: ${JSON.stringify(meta)}`)
  const measurements = await runProtocol(options)
  const report = reportProtocol(options, measurements)
  const load = Os.loadavg()
  console.log(`
node ${meta.node} | CPU ${meta.cpu} | ${meta.cores} cores | load average ${meta.loadAverage.map((x) => x.toFixed(2)).join(" ")} at the start (${meta.started}), ${load.map((x) => x.toFixed(2)).join(" ")} at the end (${new Date().toISOString()})
command: ${meta.command}
${protocol.client} with ${options.sizing.clients} connections, ${options.sizing.requests} requests per test; ${options.rounds} round(s), servers alternating in a rotated order each round, each started fresh${options.quick ? "" : " and warmed up by a short run of the client"}.
Servers: ${options.servers.map((name) => `${name} = ${protocol.servers[name]!.about}`).join("; ")}.
Workloads: ${options.workloads.map((name) => `${name} = ${protocol.workloads[name]!.about}`).join("; ")}.
The last table gives medians over the rounds of the measured client run: CPU in % of one core (of ${meta.cores}),
"other" being the rest of the machine's busy time (other processes, unattributed kernel work: high means disturbed).

${report.markdown}

chart: ${report.chart}
`)
  if (options.profileDir !== undefined) {
    const profiled = measurements.flatMap((m) => (m.profileDir === undefined ? [] : [{ ...m, dir: m.profileDir }]))
    console.log(profileReport(options.profileDir, profiled))
  }
  if (main.json !== undefined) {
    writeFileSync(
      main.json,
      `${JSON.stringify({ meta, measurements, summary: report.rows, targets: report.targets }, null, 2)}\n`
    )
  }
  const failures = measurements.filter((m) => !m.ok)
  if (failures.length === 0) return 0
  console.error(
    `${failures.length} measurement(s) failed: ${failures.map((m) => `${m.workload}/${m.server} (round ${m.round})`).join(", ")}`
  )
  return 1
}
