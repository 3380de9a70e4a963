/**
 * Builds the API reference of the public packages with TypeDoc into
 * `docs/api/` (`npm run docs`), and with `--check` (`npm run docs:check`) fails
 * when it is not complete:
 * - TypeDoc's own validation: an export without a doc comment, a `{@link}`
 *   that resolves to nothing, a type that is used but not exported; any
 *   TypeDoc warning counts;
 * - every public module opens with a doc comment (shown on its page), and
 *   every public module and every export of one has a `@since` tag;
 * - every link in the generated HTML (from `{@link}`, markdown links in doc
 *   comments or the README, and TypeDoc's own navigation) leads to a file of
 *   the site and, with a `#fragment`, to an element with that id.
 *
 * The packages and their modules are discovered (`packages.ts`), so new
 * modules are documented and checked without touching this file.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  Application,
  type Comment,
  DeclarationReflection,
  type ProjectReflection,
  ReflectionKind,
  type SomeType
} from "typedoc"
import { publicPackages, relative, root } from "./packages.ts"

const check = process.argv.includes("--check")
const out = path.join(root, "docs", "api")
const packages = publicPackages()

const app = await Application.bootstrapWithPlugins({
  name: "pool-manager",
  entryPoints: packages.map((pkg) => pkg.entry),
  entryPointStrategy: "resolve",
  tsconfig: path.join(root, "docs", "tsconfig.json"),
  // `npm run check` (TypeScript 7) is the type check; TypeScript 6 only reads the types here.
  skipErrorChecking: true,
  readme: path.join(root, "README.md"),
  out,
  excludeExternals: true,
  excludePrivate: true,
  excludeInternal: true,
  // Source links would need a published repository to point at.
  disableSources: true,
  categorizeByGroup: false,
  validation: { notExported: true, invalidLink: true, notDocumented: true, rewrittenLink: true },
  // TypeDoc only requires docs of the root package (the private workspace) unless told.
  packagesRequiringDocumentation: packages.map((pkg) => pkg.name),
  // Exports, not each of their fields: a list of fields is documented once
  // (ManagerConfig's, not again on Input, NodeCli.Defaults and the error classes).
  requiredToBeDocumented: ["Namespace", "Enum", "Variable", "Function", "Class", "Interface", "TypeAlias"],
  treatWarningsAsErrors: false,
  logLevel: "Warn"
})

const project = await app.convert()
if (project === undefined) {
  console.error("docs: TypeDoc could not convert the packages (see the errors above)")
  process.exit(1)
}

// TypeDoc names each entry point by its path ("core/src"); a reader looks for the package.
for (const module of project.children ?? []) {
  const name = project.getSymbolIdFromReflection(module)?.packageName
  if (packages.some((pkg) => pkg.name === name)) module.name = name!
}

const problems: Array<string> = []

/**
 * The doc comment a module file opens with, without its tags: what the module
 * is and how to use it. `index.ts` gives each `export * as` a one-line
 * comment, which TypeDoc would show instead; the file's own comment says more.
 */
const moduleHeader = (file: string): string | undefined => {
  const match = /^\s*\/\*\*([\s\S]*?)\*\//.exec(fs.readFileSync(file, "utf8"))
  if (match === null) return undefined
  const lines = match[1]!.split("\n").map((line) => line.replace(/^\s*\*( |$)/, ""))
  const tagAt = lines.findIndex((line) => line.startsWith("@"))
  return (tagAt === -1 ? lines : lines.slice(0, tagAt)).join("\n").trim()
}

for (const pkg of packages) {
  const reflection = project.children?.find((child) => child.name === pkg.name)
  for (const module of pkg.modules) {
    const header = moduleHeader(module.file)
    const namespace = reflection?.getChildByName(module.name)
    if (header === undefined || header === "")
      problems.push(`${relative(module.file)}: the module does not open with a doc comment`)
    else if (header.includes("{@link"))
      // The header is shown as Markdown, which TypeDoc does not resolve links in.
      problems.push(
        `${relative(module.file)}: {@link} in the module's opening comment; use a Markdown link or \`code\``
      )
    else if (namespace instanceof DeclarationReflection && namespace.comment !== undefined)
      namespace.comment.summary = [{ kind: "text", text: header }]
  }
}

const commentOf = (reflection: DeclarationReflection): Comment | undefined => {
  if (reflection.comment !== undefined) return reflection.comment
  const signature = reflection.signatures?.[0] ?? reflectionType(reflection.type)?.signatures?.[0]
  return signature?.comment
}

const reflectionType = (type: SomeType | undefined) => (type?.type === "reflection" ? type.declaration : undefined)

const where = (reflection: DeclarationReflection): string => {
  const id = project.getSymbolIdFromReflection(reflection)
  const pkg = packages.find((candidate) => candidate.name === id?.packageName)
  return id === undefined || pkg === undefined ? "" : ` (${relative(path.join(pkg.dir, id.packagePath))})`
}

const requireSince = (reflection: DeclarationReflection): void => {
  const comment = commentOf(reflection)
  const name = reflection.getFriendlyFullName()
  if (comment === undefined) problems.push(`${name}${where(reflection)}: no doc comment`)
  else if (comment.getTag("@since") === undefined) problems.push(`${name}${where(reflection)}: no @since tag`)
}

const checkProject = (project: ProjectReflection): void => {
  for (const pkg of project.children ?? []) {
    for (const module of pkg.children ?? []) {
      requireSince(module)
      if (!module.kindOf(ReflectionKind.Namespace)) continue
      for (const declaration of module.children ?? []) requireSince(declaration)
    }
  }
}

app.validate(project)
checkProject(project)
await app.generateDocs(project, out)

const ids = new Map<string, Set<string>>()
const idsOf = (file: string): Set<string> => {
  let found = ids.get(file)
  if (found === undefined) {
    const html = fs.readFileSync(file, "utf8")
    found = new Set(Array.from(html.matchAll(/\s(?:id|name)="([^"]+)"/g), ([, id]) => decodeHtml(id!)))
    ids.set(file, found)
  }
  return found
}
const decodeHtml = (text: string): string =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")

const checkLinks = (): number => {
  let count = 0
  const pages = fs
    .readdirSync(out, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".html"))
    .map((entry) => path.join(entry.parentPath, entry.name))
  for (const page of pages) {
    const html = fs.readFileSync(page, "utf8")
    for (const [, attribute, raw] of html.matchAll(/\s(href|src)="([^"]*)"/g)) {
      const link = decodeHtml(raw!)
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue // http(s), mailto: not fetched here
      count++
      // href="" is the breadcrumb's link to the page itself
      const [target = "", fragment] = link.split("#", 2)
      const file = target === "" ? page : path.resolve(path.dirname(page), decodeURIComponent(target.split("?")[0]!))
      const shown = `${path.relative(out, page)}: ${attribute}="${link}"`
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) problems.push(`${shown}: no such file`)
      else if (fragment !== undefined && fragment !== "" && file.endsWith(".html") && !idsOf(file).has(fragment))
        problems.push(`${shown}: no element with id "${fragment}"`)
    }
  }
  return count
}
const links = checkLinks()

const warnings = app.logger.warningCount + app.logger.errorCount
if (!check) {
  for (const problem of problems) console.warn(`docs: ${problem}`)
  console.log(`docs: API reference of ${packages.map((pkg) => pkg.name).join(", ")} in ${relative(out)}/index.html`)
} else if (warnings > 0 || problems.length > 0) {
  for (const problem of problems) console.error(`docs: ${problem}`)
  console.error(`docs: ${warnings} TypeDoc warning(s) or error(s) and ${problems.length} problem(s) above`)
  process.exit(1)
} else {
  const modules = packages.reduce((sum, pkg) => sum + pkg.modules.length, 0)
  console.log(`docs: ${packages.length} packages, ${modules} modules documented, ${links} local links resolve`)
}
