/**
 * Type-checks the examples of the docs, so they cannot rot
 * (`npm run docs:examples`, also part of `npm run docs:check`).
 *
 * Every ```ts block inside a doc comment of a public package's sources is
 * written to `tmp/doc-examples/` as a file of its own and compiled by the
 * workspace's `tsc` under the root tsconfig (strict, with the
 * `@pool-manager/source` condition, so `@pool-manager/core` resolves to the
 * sources being documented). Examples are user code: they import from package
 * names (`@pool-manager/core`, `effect`, ...), never from relative paths; an
 * example that uses its own module's namespace without importing it gets that
 * import added. Unused locals are allowed, since an example often only shows
 * how a value is built.
 *
 * It also fails when a public module (a module its package's entry point
 * re-exports) has no example at all. Errors point at the line of the source
 * file the example came from.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { type PublicPackage, publicPackages, relative, root, sourceFiles } from "./packages.ts"

const problems: Array<string> = []

interface Example {
  readonly source: string
  /** The line of `source` holding the example's first line of code (1-based). */
  readonly line: number
  /** How many characters of each source line precede the code (the comment's ` * `). */
  readonly indent: number
  readonly code: string
}

/** The ```ts blocks of the doc comments of `source`. */
const examplesOf = (source: string): Array<Example> => {
  const text = fs.readFileSync(source, "utf8")
  const examples: Array<Example> = []
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const firstLine = text.slice(0, comment.index).split("\n").length
    const raw = comment[0].split("\n")
    const lines = raw.map((line) => line.replace(/^\s*\*( |$)/, ""))
    let start: number | undefined
    for (const [i, line] of lines.entries()) {
      if (start === undefined && /^\s*```(ts|typescript)\s*$/.test(line)) start = i + 1
      else if (start !== undefined && /^\s*```\s*$/.test(line)) {
        const indent = raw[start]!.length - lines[start]!.length
        examples.push({ source, line: firstLine + start, indent, code: lines.slice(start, i).join("\n") })
        start = undefined
      }
    }
    if (start !== undefined)
      problems.push(`${relative(source)}:${firstLine + start - 1}: a \`\`\`ts block is not closed`)
  }
  return examples
}

const out = path.join(root, "tmp", "doc-examples")
fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out, { recursive: true })

/** Where each written file's lines come from: its name, lines of prelude, example. */
const written = new Map<string, { readonly prelude: number; readonly example: Example }>()

const ownModule = (pkg: PublicPackage, source: string) => pkg.modules.find((module) => module.file === source)

for (const pkg of publicPackages()) {
  const files = sourceFiles(path.dirname(pkg.entry))
  const examples = files.flatMap(examplesOf)
  for (const module of pkg.modules) {
    if (!examples.some((example) => example.source === module.file))
      problems.push(`${relative(module.file)}: the public module ${pkg.name} ${module.name} has no @example`)
  }
  for (const example of examples) {
    const at = `${relative(example.source)}:${example.line}`
    if (/^\s*(import|export)\b[^;]*?from\s+["']\./m.test(example.code)) {
      problems.push(`${at}: an example imports from a relative path; import from the package, as a user would`)
      continue
    }
    const prelude: Array<string> = []
    const module = ownModule(pkg, example.source)
    if (
      module !== undefined &&
      new RegExp(`\\b${module.name}\\.`).test(example.code) &&
      !new RegExp(`import[^;]*\\b${module.name}\\b[^;]*from`).test(example.code)
    )
      prelude.push(`import { ${module.name} } from "${pkg.name}"`)
    prelude.push("export {}") // a module even without imports
    const name = `${relative(example.source).replace(/[/\\.]/g, "_")}_L${example.line}.ts`
    fs.writeFileSync(path.join(out, name), `${prelude.join("\n")}\n${example.code}\n`)
    written.set(name, { prelude: prelude.length, example })
  }
}

fs.writeFileSync(
  path.join(out, "tsconfig.json"),
  JSON.stringify(
    {
      extends: "../../tsconfig.json",
      compilerOptions: { noUnusedLocals: false, noUnusedParameters: false },
      include: ["*.ts"]
    },
    null,
    2
  )
)

if (written.size > 0) {
  const tsc = spawnSync(
    process.execPath,
    [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", out, "--pretty", "false"],
    { encoding: "utf8" }
  )
  const output = `${tsc.stdout}${tsc.stderr}`
  // Error lines point into tmp/doc-examples; show them at the source instead.
  for (const line of output.split("\n")) {
    const match = /^(?:.*[/\\])?([^/\\(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line)
    const file = match === null ? undefined : written.get(match[1]!)
    if (match !== null && file !== undefined) {
      const sourceLine = file.example.line + Number(match[2]) - 1 - file.prelude
      const column = Number(match[3]) + file.example.indent
      problems.push(`${relative(file.example.source)}:${sourceLine}:${column}: ${match[4]}`)
    } else if (line.trim() !== "") problems.push(line)
  }
  if (tsc.status !== 0 && problems.length === 0) problems.push(`tsc exited with ${tsc.status ?? tsc.signal}`)
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`examples: ${problem}`)
  console.error(`examples: ${problems.length} problem(s) in the docs' examples (compiled copies in ${relative(out)})`)
  process.exit(1)
}
console.log(`examples: ${written.size} examples from the doc comments compile`)
