/**
 * What Linux's /proc says about a process: its open file descriptors and its
 * resident memory. The system tests measure leaks with these, from outside the
 * process under test, so the measurement cannot disturb it.
 */
import * as Fs from "node:fs"

/** Open file descriptors of a process. */
export const fdCount = (pid: number | "self"): number => Fs.readdirSync(`/proc/${pid}/fd`).length

/** What a process's open fds are, counted by kind: `socket`, `pipe`, a path... */
export const fdKinds = (pid: number): string => {
  const kinds = new Map<string, number>()
  for (const fd of Fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string
    try {
      target = Fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, "")
    } catch {
      continue // closed since the listing
    }
    kinds.set(target, (kinds.get(target) ?? 0) + 1)
  }
  return Array.from(kinds, ([kind, count]) => `${count} ${kind}`).join(", ")
}

/** Resident set size of a process in bytes. */
export const rssBytes = (pid: number | "self"): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}
