/**
 * Where a Node server's time goes, from a V8 CPU profile (`node --cpu-prof`),
 * for `npm run bench -- --protocol ... --profile DIR`: every sample is put in
 * a category by the function it was in (its own code, not its callers'):
 * socket system calls, Node's streams and buffers, the server's own code, the
 * Effect runtime, the pool, garbage collection. Idle time and start-up
 * (loading modules) are left out of the shares, so the shares are of the time
 * the process was busy serving.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface CallFrame {
  readonly functionName: string
  readonly url: string
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<{ readonly id: number; readonly callFrame: CallFrame }>
  readonly samples: ReadonlyArray<number>
}

/** The categories, in the order of the table's columns. */
export const categories = [
  "socket system calls",
  "Node streams, buffers, net",
  "server code",
  "Effect runtime",
  "pool (core, node)",
  "other native",
  "GC",
  "other"
] as const

export type Category = (typeof categories)[number]

// The native functions under which V8 reports the time of a socket write or read.
const syscalls = new Set(["writeBuffer", "writev", "writeUtf8String", "writeLatin1String", "read", "close"])

const categorize = (frame: CallFrame): Category | "idle" | "startup" => {
  const { functionName: name, url } = frame
  if (name === "(idle)") return "idle"
  if (name === "(garbage collector)") return "GC"
  if (url === "") return syscalls.has(name) ? "socket system calls" : "other native"
  if (url.includes("node:internal/modules") || url.includes("node:internal/bootstrap")) return "startup"
  if (url.includes("/node_modules/effect/") || url.includes("/node_modules/@effect/")) return "Effect runtime"
  if (url.includes("/packages/core/") || url.includes("/packages/node/")) return "pool (core, node)"
  if (url.includes("/bench/build/")) return "server code"
  if (url.startsWith("node:")) return "Node streams, buffers, net"
  return "other"
}

/** Shares (0 to 1) of the busy samples per category, and how many samples that was. */
export interface ProfileSummary {
  readonly busySamples: number
  readonly idleShare: number
  readonly shares: Readonly<Record<Category, number>>
}

export const summarizeProfile = (file: string): ProfileSummary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const counts = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = frames.get(id)
    const category = frame === undefined ? "other" : categorize(frame)
    counts.set(category, (counts.get(category) ?? 0) + 1)
  }
  const busy = categories.reduce((sum, category) => sum + (counts.get(category) ?? 0), 0)
  const shares = Object.fromEntries(
    categories.map((category) => [category, busy === 0 ? 0 : (counts.get(category) ?? 0) / busy])
  ) as Record<Category, number>
  return { busySamples: busy, idleShare: (counts.get("idle") ?? 0) / Math.max(1, profile.samples.length), shares }
}

/** The profile a process wrote into `dir` (`--cpu-prof-dir`), if any. */
export const profileIn = (dir: string): string | undefined => {
  try {
    const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile"))
    return file === undefined ? undefined : join(dir, file)
  } catch {
    return undefined
  }
}

/** A markdown table of the profiles of some runs: one row per run, the categories' shares of its busy time. */
export const profileTable = (runs: ReadonlyArray<ProfiledRun>): string => {
  const rows = runs.flatMap((run) => {
    const file = profileIn(run.dir)
    if (file === undefined) return []
    const summary = summarizeProfile(file)
    return [
      [
        run.workload,
        run.server,
        String(run.round),
        ...categories.map((category) => (summary.shares[category] * 100).toFixed(1)),
        (summary.idleShare * 100).toFixed(1)
      ]
    ]
  })
  if (rows.length === 0) return "no profile was written (only Node servers are profiled)"
  const header = ["workload", "server", "round", ...categories.map((category) => `${category} %`), "idle % of all"]
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
}

/** A profiled measurement: what ran, and the directory its profile went to. */
export interface ProfiledRun {
  readonly workload: string
  readonly server: string
  readonly round: number
  readonly dir: string
}

/** With `--profile ROOT`: the directory of one measurement's profile; none without. */
export const profileDirOf = (
  root: string | undefined,
  workload: string,
  server: string,
  round: number
): string | undefined => (root === undefined ? undefined : join(root, `${workload}-${server}-round${round}`))

/** A Node server's flags, with V8's CPU profiler writing into `dir` when there is one. */
export const withCpuProfile = (nodeFlags: ReadonlyArray<string>, dir: string | undefined): ReadonlyArray<string> =>
  dir === undefined ? nodeFlags : [...nodeFlags, "--cpu-prof", `--cpu-prof-dir=${dir}`]

/** The closing section of a `--profile ROOT` run: its table, and where the profiles are. */
export const profileReport = (root: string, runs: ReadonlyArray<ProfiledRun>): string =>
  `Where each profiled server's busy time went (self time by category, warm-up included; profiles in ${root}):

${profileTable(runs)}
`
