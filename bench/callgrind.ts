/**
 * What a server runs per request, counted instead of timed, for
 * `npm run bench -- --callgrind DIR`: each Node server runs under valgrind's
 * callgrind with its cache simulation, counting only between the client's
 * `measure-start` and `measure-end` (`callgrind_control -i on|off`), and the
 * counts are divided by the requests the client completed in that window.
 * Instructions are repeatable whatever else the machine is doing, where
 * these shared 2-core VMs have no hardware counters (BENCHMARKS.md,
 * "Counted instructions"). The counts are the whole process's in user space
 * (its JavaScript, V8, Node, libuv, libc; not the kernel), the misses those
 * of valgrind's model of the caches fed with this process alone. Valgrind
 * slows a server about 30 times: the rates of such a run mean nothing.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync } from "node:fs"
import { profileDirOf } from "./profile.ts"
import type { WorkloadMeasurement } from "./summary.ts"

/** The counts reported per request, as callgrind names them, with what the table calls them. */
export const events = [
  ["Ir", "instructions"],
  ["Dr", "data reads"],
  ["D1mr", "D1 read misses"],
  ["D1mw", "D1 write misses"],
  ["I1mr", "I1 misses"],
  ["DLmr", "LL data read misses"]
] as const

export type Event = (typeof events)[number][0]

/** With `--callgrind ROOT`: the file of one measurement's counts, named as `--profile` names its directories; none without. */
export const callgrindFileOf = (
  root: string | undefined,
  workload: string,
  server: string,
  round: number
): string | undefined => {
  if (root === undefined) return undefined
  mkdirSync(root, { recursive: true })
  return `${profileDirOf(root, workload, server, round)}.out`
}

/** The command that runs `argv` under callgrind into `file`, collecting nothing until switched on. */
export const underCallgrind = (file: string, argv: ReadonlyArray<string>): Array<string> => [
  "valgrind",
  "--tool=callgrind",
  "--cache-sim=yes",
  "--instr-atstart=no",
  // V8 writes and rewrites machine code: valgrind must notice, or it runs stale translations.
  "--smc-check=all-non-file",
  `--callgrind-out-file=${file}`,
  ...argv
]

/** Switches the counting of the callgrind process `pid` on or off (at the client's window). */
export const switchCounting = (pid: number, on: boolean): void => {
  execFileSync("callgrind_control", ["-i", on ? "on" : "off", String(pid)], { stdio: "ignore" })
}

/** The program's totals in a callgrind output file, by event: its `events:` and `totals:` lines. */
export const totals = (file: string): Partial<Record<Event, number>> => {
  const text = readFileSync(file, "utf8")
  const names = /^events: (.*)$/m.exec(text)?.[1]?.trim().split(" ") ?? []
  const values = /^totals: (.*)$/m.exec(text)?.[1]?.trim().split(" ").map(Number) ?? []
  return Object.fromEntries(names.map((name, i) => [name, values[i]]))
}

/** A counted measurement: what ran, how many requests it completed in the window, and its file. */
export interface CountedRun {
  readonly workload: string
  readonly server: string
  readonly round: number
  readonly file: string
  readonly completed: number
}

const perRequest = (run: CountedRun): Partial<Record<Event, number>> => {
  const counted = totals(run.file)
  return Object.fromEntries(
    events.map(([event]) => [event, counted[event] === undefined ? Number.NaN : counted[event] / run.completed])
  )
}

/** A measurement's counted run, when it completed requests (none to divide by otherwise). */
export const countedRun = (m: WorkloadMeasurement, file: string): Array<CountedRun> => {
  const completed = m.client?.completed ?? 0
  return m.ok && completed > 0 ? [{ workload: m.workload, server: m.server, round: m.round, file, completed }] : []
}

/** The closing section of a `--callgrind ROOT` run: one row per measurement, its counts per request. */
export const callgrindReport = (root: string, runs: ReadonlyArray<CountedRun>): string => {
  const header = ["workload", "server", "round", "requests counted", ...events.map(([, name]) => `${name} per request`)]
  const rows = runs.map((run) => {
    const counts = perRequest(run)
    return [
      run.workload,
      run.server,
      String(run.round),
      String(run.completed),
      ...events.map(([event]) => (counts[event] ?? Number.NaN).toFixed(1))
    ]
  })
  const table = [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
  return `What each server ran per request in the client's window, counted by callgrind (files in ${root}):

${rows.length === 0 ? "no measurement completed a request" : table}
`
}
