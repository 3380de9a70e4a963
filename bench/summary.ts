/**
 * The workload runs' report (bench/run.ts): the median of each server's rounds
 * per workload, its ratios to raw and to floor in the same round, and the
 * markdown table of them.
 */
import { type Measurement, median, ms } from "./harness.ts"

/** A workload: the client's arguments and the unit of its rate. */
export interface Workload {
  readonly name: string
  readonly unit: string
  readonly args: ReadonlyArray<string>
}

export interface WorkloadMeasurement extends Measurement {
  readonly workload: string
}

/** One server under one workload: the medians of its rounds. */
export interface Summary {
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
  /** The server's CPU per op (one unit of the rate), user space and kernel (µs), and the client's sleeps per op. */
  readonly serverUserUs: number
  readonly serverKernelUs: number
  readonly clientSleeps: number
  /**
   * Median over the rounds of this server's rate divided by raw's in the same
   * round. Servers of a round run back to back, so this cancels most of the
   * drift of a shared machine between rounds.
   */
  readonly roundRatio: number | undefined
  /** The same over floor's rate: what the server costs beyond a fiber resumption per message (pool / floor). */
  readonly floorRatio: number | undefined
}

/** The medians of each workload's rounds, per server, in the order of `workloads` and `servers`. */
export const summarize = (
  measurements: ReadonlyArray<WorkloadMeasurement>,
  workloads: ReadonlyArray<Workload>,
  servers: ReadonlyArray<string>
): Array<Summary> => {
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
      // The median over the rounds of this server's rate over `base`'s in the same round.
      const sameRound = (base: string) => {
        const ratios = ok.flatMap((m) => {
          const other = measurements.find(
            (r) => r.workload === workload.name && r.server === base && r.round === m.round && r.client !== undefined
          )
          return other !== undefined && other.client!.rate > 0 ? [m.client!.rate / other.client!.rate] : []
        })
        return ratios.length > 0 ? median(ratios) : undefined
      }
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
        serverUserUs: pick((m) => m.serverUserUs!),
        serverKernelUs: pick((m) => m.serverKernelUs!),
        clientSleeps: pick((m) => m.clientSleeps!),
        roundRatio: sameRound("raw"),
        floorRatio: sameRound("floor")
      })
    }
  }
  return out
}

const ratio = (value: number, base: number | undefined) =>
  base === undefined || base === 0 ? "–" : (value / base).toFixed(2)

/** The summary as a markdown table; the floor's column only when floor ran (with --servers, it may not). */
export const table = (summary: ReadonlyArray<Summary>, workloads: ReadonlyArray<Workload>): string => {
  const withFloor = summary.some((s) => s.server === "floor")
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
    "server µs per op (user + kernel)",
    "client sleeps per op",
    "rate ratio vs raw",
    "same-round rate ratio",
    ...(withFloor ? ["same-round rate ratio vs floor"] : []),
    "p99 ratio vs raw",
    "RSS ratio vs raw",
    "other CPU %"
  ]
  const rows = summary.map((s) => {
    const raw = summary.find((r) => r.workload === s.workload && r.server === "raw")
    const unit = workloads.find((w) => w.name === s.workload)!.unit
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
      `${s.serverUserUs.toFixed(2)} + ${s.serverKernelUs.toFixed(2)}`,
      s.clientSleeps.toFixed(2),
      ratio(s.rate, raw?.rate),
      s.roundRatio === undefined ? "–" : s.roundRatio.toFixed(2),
      ...(withFloor ? [s.floorRatio === undefined ? "–" : s.floorRatio.toFixed(2)] : []),
      ratio(s.p99_us, raw?.p99_us),
      ratio(s.serverRssMb, raw?.serverRssMb),
      s.otherCpuPct.toFixed(0)
    ]
  })
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
}
