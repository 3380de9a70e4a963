/**
 * The ecosystem's package checks, for every public package of the workspace:
 * `publint --strict` (the manifest: exports, files, types), `attw --pack`
 * with the ESM-only profile on every entry point (how Node and TypeScript
 * resolve each import path, including the subpaths the `./*` pattern
 * exports, which attw does not expand by itself), and `npm publish --dry-run`.
 * Run after `npm run build`; exits 1 when any check reports a problem.
 */
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const repo = join(import.meta.dirname, "..")
const bin = (name: string) => join(repo, "node_modules", ".bin", name)

interface Manifest {
  readonly name: string
  readonly private?: boolean
}

const packages = readdirSync(join(repo, "packages"))
  .map((dir) => join(repo, "packages", dir))
  .filter((dir) => !(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest).private)

let failed = 0
/** Runs a check; it fails on a non-zero exit, or when its output matches `problem`. */
const run = (dir: string, what: string, command: string, args: ReadonlyArray<string>, problem?: RegExp) => {
  console.log(`\n== ${what}`)
  const result = spawnSync(command, args, { cwd: dir, encoding: "utf8" })
  const output = `${result.stdout}${result.stderr}`
  console.log(output.trimEnd())
  if (result.status !== 0 || problem?.test(output)) {
    failed++
    console.log(`FAILED: ${what}`)
  }
}

for (const dir of packages) {
  const { name } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest
  // Every public module is a file of src/ (internal/ is not exported).
  const modules = readdirSync(join(dir, "src"))
    .filter((file) => file.endsWith(".ts") && file !== "index.ts")
    .map((file) => `./${file.slice(0, -3)}`)
  run(dir, `${name}: publint`, bin("publint"), ["--strict"])
  run(dir, `${name}: attw (ESM only; ., ${modules.join(", ")})`, bin("attw"), [
    "--pack",
    ".",
    "--profile",
    "esm-only",
    "--format",
    "table-flipped",
    "--entrypoints",
    ".",
    ...modules
  ])
  // npm "auto-corrects" a manifest it finds wrong (dropping a bin, say) and
  // only warns: for a release that is a failure.
  run(
    dir,
    `${name}: npm publish --dry-run`,
    "npm",
    ["publish", "--dry-run", "--loglevel=warn"],
    /auto-corrected|errors corrected/
  )
}

if (failed > 0) {
  console.log(`\npackage checks: ${failed} failed`)
  process.exit(1)
}
console.log(`\npackage checks: ${packages.length} packages, every check passed`)
