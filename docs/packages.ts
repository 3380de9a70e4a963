/**
 * The public surface the docs describe, discovered rather than listed: every
 * workspace package that is not `private`, its entry point (the `.` export
 * under the workspace's `@pool-manager/source` condition), and the modules its
 * entry point re-exports (`export * as Name from "./Name.ts"`). A package or
 * module added or moved later is picked up without touching this tooling.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The repository root (this file lives in `docs/`). */
export const root = path.resolve(import.meta.dirname, "..")

/** A module a public package exports from its entry point. */
export interface PublicModule {
  /** The namespace it is exported as, e.g. `PoolManager`. */
  readonly name: string
  /** Its source file, absolute. */
  readonly file: string
}

/** A workspace package that is published. */
export interface PublicPackage {
  readonly name: string
  readonly dir: string
  /** The source of its `.` export, absolute. */
  readonly entry: string
  readonly modules: ReadonlyArray<PublicModule>
}

const readJson = (file: string): any => JSON.parse(fs.readFileSync(file, "utf8"))

const workspaceDirs = (): Array<string> => {
  const patterns: Array<string> = readJson(path.join(root, "package.json")).workspaces ?? []
  return patterns.flatMap((pattern) => {
    if (!pattern.endsWith("/*")) return [path.join(root, pattern)]
    const parent = path.join(root, pattern.slice(0, -2))
    return fs
      .readdirSync(parent, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => path.join(parent, entry.name))
  })
}

const sourceOf = (target: unknown): string | undefined => {
  if (typeof target === "string") return target.endsWith(".ts") ? target : undefined
  if (target !== null && typeof target === "object") {
    const conditions = target as Record<string, unknown>
    return sourceOf(conditions["@pool-manager/source"]) ?? sourceOf(conditions.types)
  }
  return undefined
}

const reexports = /^export \* as (\w+) from "(\.[^"]+)"/gm

/** Every published package of the workspace, sorted by name. */
export const publicPackages = (): Array<PublicPackage> =>
  workspaceDirs()
    .filter((dir) => fs.existsSync(path.join(dir, "package.json")))
    .map((dir) => ({ dir, manifest: readJson(path.join(dir, "package.json")) }))
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => {
      const exported = sourceOf(manifest.exports?.["."])
      if (exported === undefined) throw new Error(`${manifest.name}: no TypeScript source for its "." export`)
      const entry = path.join(dir, exported)
      const modules = Array.from(fs.readFileSync(entry, "utf8").matchAll(reexports), ([, name, file]) => ({
        name: name!,
        file: path.resolve(path.dirname(entry), file!)
      }))
      return { name: manifest.name as string, dir, entry, modules }
    })
    .sort((a, b) => a.name.localeCompare(b.name))

/** The `.ts` files under `dir`, recursively. */
export const sourceFiles = (dir: string): Array<string> =>
  fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort()

/** `file` relative to the repository root, for messages. */
export const relative = (file: string): string => path.relative(root, file)
