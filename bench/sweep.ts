/**
 * The scaling sweep (`npm run bench -- --sweep`): requests per second, p99
 * latency and peak RSS of each server against the number of persistent
 * connections (1 to 20,000, 16-byte messages) and against the message size
 * (16 B to 64 KiB, 50 connections), with the echo protocol (the reply is the
 * message). Servers alternate within each point of a round; each measurement
 * starts a fresh server. Writes one SVG per axis and prints markdown tables;
 * when the floor server runs, both also give each rate over floor's.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { svg } from "./chart.ts"
import { describeMeasurement, fileLimit, type Measurement, measure, median, ms, type Settings } from "./harness.ts"

export interface SweepOptions {
  readonly servers: ReadonlyArray<string>
  readonly settings: Settings
  readonly rounds: number
  /** Two points per axis instead of six: the smoke run. */
  readonly quick: boolean
  /** Connections of the message-size axis. */
  readonly connections: number
  /** Where the SVGs go. */
  readonly chartDir: string
}

interface Axis {
  readonly name: "connections" | "size"
  readonly title: string
  readonly xs: ReadonlyArray<number>
  readonly label: (x: number) => string
  readonly clientArgs: (x: number) => ReadonlyArray<string>
}

export interface SweepMeasurement extends Measurement {
  readonly axis: string
  readonly x: number
}

const smallSize = 16
const kib = (bytes: number) => (bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`)
const count = (n: number) => (n >= 1000 ? `${Number((n / 1000).toFixed(1))}k` : String(n))

/** The axes: the top connection count is what the file limit allows (a server holds one fd per connection). */
const axes = (options: SweepOptions): ReadonlyArray<Axis> => {
  const most = Math.min(20_000, fileLimit() - 100)
  const connections = options.quick ? [1, 100] : [1, 10, 100, 1000, 10_000, most]
  const sizes = options.quick ? [16, 65_536] : [16, 256, 1024, 4096, 16_384, 65_536]
  return [
    {
      name: "connections",
      title: `persistent connections (${smallSize}-byte echo)`,
      xs: [...new Set(connections)],
      label: count,
      clientArgs: (n) => ["--mode", "persistent", "--connections", String(n), "--size", String(smallSize)]
    },
    {
      name: "size",
      title: `message size (echo, ${options.connections} connections)`,
      xs: sizes,
      label: kib,
      clientArgs: (size) => [
        "--mode",
        "persistent",
        "--connections",
        String(options.connections),
        "--size",
        String(size)
      ]
    }
  ]
}

// The value of a cell that was measured.
const measured = (cell: Cell | undefined, pick: (cell: Cell) => number): number | undefined =>
  cell === undefined ? undefined : pick(cell)

interface Cell {
  readonly rate: number
  readonly p99_us: number
  readonly rssMb: number
  readonly errors: number
  readonly otherCpuPct: number
  readonly roundRatio: number | undefined
  /** Over floor's rate in the same round (pool / floor: the pool's cost beyond a resumption per message). */
  readonly floorRatio: number | undefined
}

const summarize = (all: ReadonlyArray<SweepMeasurement>, axis: string, x: number, server: string) => {
  const ok = all.filter(
    (m) => m.axis === axis && m.x === x && m.server === server && (m.client?.completed ?? 0) > 0 && m.ok
  )
  if (ok.length === 0) return undefined
  // The median over the rounds of this server's rate over `base`'s in the same round.
  const sameRound = (base: string) => {
    const ratios = ok.flatMap((m) => {
      const other = all.find((r) => r.axis === axis && r.x === x && r.server === base && r.round === m.round)
      return other?.client !== undefined && other.client.rate > 0 ? [m.client!.rate / other.client.rate] : []
    })
    return ratios.length > 0 ? median(ratios) : undefined
  }
  const cell: Cell = {
    rate: median(ok.map((m) => m.client!.rate)),
    p99_us: median(ok.map((m) => m.client!.p99_us)),
    rssMb: median(ok.map((m) => m.serverRssMb!)),
    errors: ok.reduce((sum, m) => sum + m.client!.errors, 0),
    otherCpuPct: median(ok.map((m) => m.otherCpuPct!)),
    roundRatio: sameRound("raw"),
    floorRatio: sameRound("floor")
  }
  return cell
}

const table = (axis: Axis, cells: (x: number, server: string) => Cell | undefined, servers: ReadonlyArray<string>) => {
  const withFloor = servers.includes("floor")
  const header = [
    axis.name,
    "server",
    "req/s",
    "same-round ratio vs raw",
    ...(withFloor ? ["same-round ratio vs floor"] : []),
    "p99",
    "server RSS MB",
    "errors",
    "other CPU %"
  ]
  const rows = axis.xs.flatMap((x) =>
    servers.map((server) => {
      const cell = cells(x, server)
      return cell === undefined
        ? [axis.label(x), server, "failed", ...header.slice(3).map(() => "–")]
        : [
            axis.label(x),
            server,
            String(Math.round(cell.rate)),
            cell.roundRatio === undefined ? "–" : cell.roundRatio.toFixed(2),
            ...(withFloor ? [cell.floorRatio === undefined ? "–" : cell.floorRatio.toFixed(2)] : []),
            ms(cell.p99_us),
            cell.rssMb.toFixed(1),
            String(cell.errors),
            cell.otherCpuPct.toFixed(0)
          ]
    })
  )
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
}

/** Runs the sweep, writes the charts, prints the tables; returns every measurement. */
export const runSweep = async (options: SweepOptions): Promise<ReadonlyArray<SweepMeasurement>> => {
  const { servers, settings } = options
  const measurements: Array<SweepMeasurement> = []
  const plan = axes(options)
  for (let round = 0; round < options.rounds; round++) {
    const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)]
    for (const axis of plan) {
      for (const x of axis.xs) {
        for (const server of order) {
          const m = await measure(round + 1, server, axis.clientArgs(x), settings, ["--echo"])
          measurements.push({ ...m, axis: axis.name, x })
          console.error(
            `sweep round ${round + 1}/${options.rounds} ${axis.name}=${axis.label(x)} ${server}: ${describeMeasurement(m, "req/s")}`
          )
        }
      }
    }
  }

  report(options, plan, measurements)
  return measurements
}

/** The charts and tables of a sweep's measurements (also from a saved `--json`, with `--sweep-from`). */
export const report = (
  options: SweepOptions,
  plan: ReadonlyArray<Axis>,
  measurements: ReadonlyArray<SweepMeasurement>
): void => {
  const { servers, settings } = options
  mkdirSync(options.chartDir, { recursive: true })
  const sections: Array<string> = []
  for (const axis of plan) {
    const cells = (x: number, server: string) => summarize(measurements, axis.name, x, server)
    const series = (pick: (cell: Cell) => number) =>
      servers.map((name) => ({ name, values: axis.xs.map((x) => measured(cells(x, name), pick)) }))
    const file = join(options.chartDir, `sweep-${axis.name}.svg`)
    writeFileSync(
      file,
      svg({
        title: `Against ${axis.title}: median of ${options.rounds} round(s) of ${settings.duration} s`,
        xTitle: axis.title,
        xs: axis.xs,
        xLabel: axis.label,
        panels: [
          {
            title: "requests/s",
            format: (y) => (y >= 1000 ? `${y / 1000}k` : String(y)),
            series: series((cell) => cell.rate)
          },
          {
            title: "p99 latency (log scale)",
            logY: true,
            format: (y) => (y >= 1000 ? `${y / 1000} ms` : `${y} µs`),
            series: series((cell) => cell.p99_us)
          },
          { title: "server RSS (MB)", format: String, series: series((cell) => cell.rssMb) },
          // Where the pool's line sits under floor's (at 1) is its own bookkeeping per message.
          ...(servers.includes("floor")
            ? [
                {
                  title: "rate / floor's (same round)",
                  format: (y: number) => y.toFixed(1),
                  series: series((cell) => cell.floorRatio ?? 0)
                }
              ]
            : [])
        ]
      })
    )
    console.error(`wrote ${file}`)
    sections.push(`Against ${axis.title}:\n\n${table(axis, cells, servers)}`)
  }
  console.log(`\n${sections.join("\n\n")}\n`)
}

/** Charts and tables again from the `--json` of a sweep, with its own points and servers (no measuring). */
export const reportSaved = (options: SweepOptions, measurements: ReadonlyArray<SweepMeasurement>): void => {
  const saved = axes(options).map((axis) => ({
    ...axis,
    xs: [...new Set(measurements.filter((m) => m.axis === axis.name).map((m) => m.x))].sort((a, b) => a - b)
  }))
  const servers = [...new Set(measurements.map((m) => m.server))]
  report({ ...options, servers }, saved, measurements)
}
