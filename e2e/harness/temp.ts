/**
 * Temporary folders for the system tests (rendered configs, pid files, config
 * files a test breaks on purpose). Each is remembered so that `killAll`
 * (cleanup.ts) removes it after the test, pass or fail.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const dirs: Array<string> = []

/** A new temporary folder, removed by `killAll`. */
export const tempDir = (prefix = "pool-manager-e2e-"): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

/** Removes every folder `tempDir` made so far. */
export const removeTempDirs = (): void => {
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
}
