/**
 * Line charts as SVG text, written by the sweep (bench/sweep.ts) for
 * BENCHMARKS.md: one SVG of side-by-side panels sharing an x axis (log scale,
 * a tick at each measured point) and a legend, one line per server. No
 * dependency: the curves are polylines in a viewBox, so they scale. And bar
 * charts (`barsSvg`), written by the protocol benchmark (bench/protocol.ts):
 * groups of bars, one bar per server, in the same colours and axes.
 */

/** One panel: a quantity measured at every x, one series per server. */
export interface Panel {
  readonly title: string
  /** Log scale (p99 latencies span four decades); else linear from 0. */
  readonly logY?: boolean
  readonly format: (y: number) => string
  /** One value per x per series; `undefined` where a measurement failed. */
  readonly series: ReadonlyArray<{ readonly name: string; readonly values: ReadonlyArray<number | undefined> }>
}

export interface Chart {
  readonly title: string
  readonly xTitle: string
  readonly xs: ReadonlyArray<number>
  readonly xLabel: (x: number) => string
  readonly panels: ReadonlyArray<Panel>
}

// Colour-blind-safe (Okabe–Ito), in series order.
const colors = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
const dashes = ["", "6 3", "2 2", "8 3 2 3", "", "6 3", "2 2", ""]

const panelWidth = 320
const panelHeight = 230
const margin = { left: 58, right: 26, top: 26, bottom: 50 }
const legendHeight = 26

const xml = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")

const niceStep = (span: number, ticks: number) => {
  const raw = span / ticks
  const power = 10 ** Math.floor(Math.log10(raw))
  const unit = raw / power
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power
}

const yTicks = (max: number, log: boolean, min: number): Array<number> => {
  if (log) {
    const ticks: Array<number> = []
    for (let p = Math.floor(Math.log10(min)); 10 ** p <= max * 1.0001; p++) ticks.push(10 ** p)
    return ticks
  }
  const step = niceStep(max, 4)
  return Array.from({ length: Math.floor(max / step + 1e-9) + 1 }, (_, i) => i * step)
}

const renderPanel = (chart: Chart, panel: Panel, offsetX: number, offsetY: number): string => {
  const w = panelWidth - margin.left - margin.right
  const h = panelHeight - margin.top - margin.bottom
  const values = panel.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0))
  const top = values.length === 0 ? 1 : Math.max(...values)
  const bottom = values.length === 0 ? 1 : Math.min(...values)
  const logY = panel.logY === true
  const yMin = logY ? 10 ** Math.floor(Math.log10(bottom)) : 0
  const yMax = logY ? 10 ** Math.ceil(Math.log10(top)) : top * 1.08
  const xMin = Math.log10(chart.xs[0]!)
  const xMax = Math.log10(chart.xs[chart.xs.length - 1]!)
  const px = (x: number) => offsetX + margin.left + ((Math.log10(x) - xMin) / (xMax - xMin || 1)) * w
  const py = (y: number) =>
    offsetY +
    margin.top +
    h -
    (logY ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin) || 1) : y / yMax) * h
  const out: Array<string> = []
  out.push(
    `<text x="${offsetX + margin.left + w / 2}" y="${offsetY + 16}" text-anchor="middle" font-weight="bold">${xml(panel.title)}</text>`
  )
  for (const tick of yTicks(yMax, logY, yMin)) {
    const y = py(tick).toFixed(1)
    out.push(
      `<line x1="${offsetX + margin.left}" x2="${offsetX + margin.left + w}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${offsetX + margin.left - 4}" y="${y}" text-anchor="end" dominant-baseline="middle">${xml(panel.format(tick))}</text>`
    )
  }
  let lastLabel = Number.NEGATIVE_INFINITY
  for (const x of chart.xs) {
    const at = px(x)
    // A label too close to the previous one (10k and 20k on a log axis) goes one line lower.
    const lower = at - lastLabel < 34
    lastLabel = lower ? lastLabel : at
    out.push(
      `<line x1="${at.toFixed(1)}" x2="${at.toFixed(1)}" y1="${offsetY + margin.top}" y2="${offsetY + margin.top + h}" stroke="#eee"/>`,
      `<text x="${at.toFixed(1)}" y="${offsetY + margin.top + h + (lower ? 25 : 14)}" text-anchor="middle">${xml(chart.xLabel(x))}</text>`
    )
  }
  out.push(
    `<text x="${offsetX + margin.left + w / 2}" y="${offsetY + panelHeight - 8}" text-anchor="middle">${xml(chart.xTitle)}</text>`,
    `<rect x="${offsetX + margin.left}" y="${offsetY + margin.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`
  )
  panel.series.forEach((series, i) => {
    // A failed point breaks the line rather than joining its neighbours.
    const runs: Array<Array<string>> = [[]]
    series.values.forEach((value, j) => {
      if (value === undefined || value <= 0) runs.push([])
      else runs[runs.length - 1]!.push(`${px(chart.xs[j]!).toFixed(1)},${py(value).toFixed(1)}`)
    })
    const style = `fill="none" stroke="${colors[i % colors.length]}" stroke-width="2"${dashes[i % dashes.length] === "" ? "" : ` stroke-dasharray="${dashes[i % dashes.length]}"`}`
    for (const run of runs) {
      if (run.length > 1) out.push(`<polyline points="${run.join(" ")}" ${style}/>`)
      for (const point of run) {
        const [x, y] = point.split(",")
        out.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${colors[i % colors.length]}"/>`)
      }
    }
  })
  return out.join("\n")
}

/** The chart as a standalone SVG document. */
export const svg = (chart: Chart): string => {
  const width = panelWidth * chart.panels.length
  const height = panelHeight + legendHeight + 22
  const names = chart.panels[0]?.series.map((s) => s.name) ?? []
  const legend = names.map((name, i) => {
    const x = 12 + i * 150
    const y = 30
    const dash = dashes[i % dashes.length] === "" ? "" : ` stroke-dasharray="${dashes[i % dashes.length]}"`
    return (
      `<line x1="${x}" x2="${x + 26}" y1="${y}" y2="${y}" stroke="${colors[i % colors.length]}" stroke-width="2"${dash}/>` +
      `<text x="${x + 32}" y="${y}" dominant-baseline="middle">${xml(name)}</text>`
    )
  })
  const panels = chart.panels.map((panel, i) => renderPanel(chart, panel, i * panelWidth, legendHeight + 22))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>${xml(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="14" font-size="13" font-weight="bold">${xml(chart.title)}</text>`,
    ...legend,
    ...panels,
    "</svg>",
    ""
  ].join("\n")
}

/** One panel of a bar chart: groups along x (e.g. the tests of a workload), one bar per series in each. */
export interface BarPanel {
  readonly title: string
  readonly groups: ReadonlyArray<string>
  readonly format: (y: number) => string
  /** One value per group per series; `undefined` where a measurement failed (no bar). */
  readonly series: ReadonlyArray<{ readonly name: string; readonly values: ReadonlyArray<number | undefined> }>
}

export interface BarChart {
  readonly title: string
  readonly panels: ReadonlyArray<BarPanel>
}

const barWidth = 10
const groupGap = 14
// Room for the group labels, written at a slant so long test names fit.
const barMargin = { ...margin, bottom: 62 }

const barPanelWidth = (panel: BarPanel) =>
  Math.max(
    panelWidth,
    barMargin.left + barMargin.right + panel.groups.length * (panel.series.length * barWidth + groupGap)
  )

const renderBarPanel = (panel: BarPanel, offsetX: number, offsetY: number): string => {
  const w = barPanelWidth(panel) - barMargin.left - barMargin.right
  const h = panelHeight - barMargin.top - barMargin.bottom + 12
  const values = panel.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0))
  const yMax = (values.length === 0 ? 1 : Math.max(...values)) * 1.08
  const py = (y: number) => offsetY + barMargin.top + h - (y / yMax) * h
  const left = offsetX + barMargin.left
  const out: Array<string> = [
    `<text x="${left + w / 2}" y="${offsetY + 16}" text-anchor="middle" font-weight="bold">${xml(panel.title)}</text>`
  ]
  for (const tick of yTicks(yMax, false, 0)) {
    const y = py(tick).toFixed(1)
    out.push(
      `<line x1="${left}" x2="${left + w}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${y}" text-anchor="end" dominant-baseline="middle">${xml(panel.format(tick))}</text>`
    )
  }
  const groupWidth = w / Math.max(1, panel.groups.length)
  panel.groups.forEach((group, g) => {
    const start = left + g * groupWidth + (groupWidth - panel.series.length * barWidth) / 2
    panel.series.forEach((series, i) => {
      const value = series.values[g]
      if (value === undefined || value <= 0) return
      const x = start + i * barWidth
      out.push(
        `<rect x="${x.toFixed(1)}" y="${py(value).toFixed(1)}" width="${barWidth - 1}" height="${(offsetY + barMargin.top + h - py(value)).toFixed(1)}" fill="${colors[i % colors.length]}"><title>${xml(`${series.name} ${group}: ${Math.round(value)}`)}</title></rect>`
      )
    })
    const labelX = (left + (g + 0.5) * groupWidth).toFixed(1)
    const labelY = offsetY + barMargin.top + h + 12
    out.push(
      `<text x="${labelX}" y="${labelY}" text-anchor="end" transform="rotate(-30 ${labelX} ${labelY})">${xml(group)}</text>`
    )
  })
  out.push(`<rect x="${left}" y="${offsetY + barMargin.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`)
  return out.join("\n")
}

/** A bar chart as a standalone SVG document: side-by-side panels, one legend (the series) for all. */
export const barsSvg = (chart: BarChart): string => {
  const widths = chart.panels.map(barPanelWidth)
  const width = widths.reduce((sum, one) => sum + one, 0)
  // 24 more than a line chart: the slanted group labels reach lower.
  const height = panelHeight + legendHeight + 22 + 24
  const names = chart.panels[0]?.series.map((s) => s.name) ?? []
  const legend = names.map((name, i) => {
    const x = 12 + i * 150
    return (
      `<rect x="${x}" y="25" width="12" height="10" fill="${colors[i % colors.length]}"/>` +
      `<text x="${x + 18}" y="30" dominant-baseline="middle">${xml(name)}</text>`
    )
  })
  let offset = 0
  const panels = chart.panels.map((panel, i) => {
    const svgPanel = renderBarPanel(panel, offset, legendHeight + 22)
    offset += widths[i]!
    return svgPanel
  })
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>${xml(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="14" font-size="13" font-weight="bold">${xml(chart.title)}</text>`,
    ...legend,
    ...panels,
    "</svg>",
    ""
  ].join("\n")
}
