/**
 * The text of a config file to a value, as JSON (`.json` and any other
 * name) or YAML (`.yaml`, `.yml`; YAML 1.2 with the `yaml` package), with
 * where each top-level key is, so an error can say which line to fix.
 *
 * A parse error is reported by line and column and the kind of error only:
 * never with the file's text (a config file named by mistake, such as
 * `/etc/shadow`, must not end up in a log). The parsers' own messages quote
 * the text, so they are not used.
 */
import { type Document, isMap, isScalar, LineCounter, parseDocument, visit } from "yaml"

/** The format of the file at `path`, by its name. */
export const formatOf = (path: string): "json" | "yaml" => (/\.ya?ml$/i.test(path) ? "yaml" : "json")

/** A parsed file: its value, and the position of a top-level key (`line 3, column 1`). */
export interface Parsed {
  readonly value: unknown
  readonly positionOf: (key: string) => string | undefined
}

const at = (position: { readonly line: number; readonly col: number }): string =>
  `line ${position.line}, column ${position.col}`

// The `yaml` package's error codes, in words that say what to fix without quoting the text.
const kinds: Readonly<Record<string, string>> = {
  BAD_INDENT: "bad indentation",
  TAB_AS_INDENT: "a tab used as indentation",
  DUPLICATE_KEY: "a key given twice",
  MISSING_CHAR: "a missing closing quote or bracket",
  TAG_RESOLVE_FAILED: "a value that is not valid here (unquoted text in JSON?)",
  UNEXPECTED_TOKEN: "unexpected text",
  BAD_SCALAR_START: "a value starting with a reserved character",
  MULTIPLE_DOCS: "more than one document",
  BLOCK_IN_FLOW: "a block inside brackets",
  MULTILINE_IMPLICIT_KEY: "a key spread over several lines",
  BAD_DQ_ESCAPE: "a bad escape in a double-quoted string",
  BLOCK_AS_IMPLICIT_KEY: "a key where a value was expected (indentation?)"
}

const describe = (code: string): string => kinds[code] ?? code.toLowerCase().replaceAll("_", " ")

/**
 * A YAML document's value. Two faults surface only here, when the value is
 * built: an alias with no anchor before it, and aliases expanding past the
 * parser's bound (a "billion laughs" file). The parser's messages name the
 * alias, which is the file's text, so the reason is located and worded here.
 */
const buildValue = (
  document: Document,
  lines: LineCounter
): { readonly _tag: "Built"; readonly value: unknown } | { readonly _tag: "Invalid"; readonly reason: string } => {
  try {
    return { _tag: "Built", value: document.toJS() }
  } catch {
    let unresolved: string | undefined
    visit(document, {
      Alias: (_key, alias) => {
        if (alias.resolve(document) !== undefined || alias.range === undefined || alias.range === null) return
        unresolved = at(lines.linePos(alias.range[0]))
        return visit.BREAK
      }
    })
    return {
      _tag: "Invalid",
      reason:
        unresolved === undefined
          ? "not valid YAML: its aliases expand too far"
          : `not valid YAML at ${unresolved} (an alias with no anchor before it)`
    }
  }
}

/** Parses `text` as the format of `path`; the error is a content-free reason. */
export const parseText = (
  text: string,
  path: string
): { readonly _tag: "Parsed"; readonly parsed: Parsed } | { readonly _tag: "Invalid"; readonly reason: string } => {
  const format = formatOf(path)
  const lines = new LineCounter()
  // JSON is YAML 1.2, so one parser locates the keys (and the errors) of both.
  const document = parseDocument(text, {
    lineCounter: lines,
    uniqueKeys: true,
    prettyErrors: false,
    ...(format === "json" ? { schema: "json" as const } : {})
  })
  const first = document.errors[0]
  const firstAt = first === undefined ? undefined : at(lines.linePos(first.pos[0]))
  let value: unknown
  if (format === "json") {
    try {
      value = JSON.parse(text)
    } catch (cause) {
      // V8's message quotes the text too; only its position is taken, when it has one.
      const message = (cause as Error).message
      const position = /line (\d+) column (\d+)/.exec(message)
      const where =
        first !== undefined
          ? `${firstAt} (${describe(first.code)})`
          : position !== null
            ? `line ${position[1]}, column ${position[2]}`
            : /end of JSON input/.test(message)
              ? "the end of the file (is it empty or cut short?)"
              : "line 1, column 1"
      return { _tag: "Invalid", reason: `not valid JSON at ${where}` }
    }
    if (first?.code === "DUPLICATE_KEY") {
      return { _tag: "Invalid", reason: `not valid JSON at ${firstAt} (${describe(first.code)})` }
    }
  } else {
    if (first !== undefined)
      return { _tag: "Invalid", reason: `not valid YAML at ${firstAt} (${describe(first.code)})` }
    const built = buildValue(document, lines)
    if (built._tag === "Invalid") return built
    // A file of comments only (every setting commented out) sets nothing.
    value = built.value ?? {}
  }
  const contents = document.errors.length === 0 ? document.contents : null
  return {
    _tag: "Parsed",
    parsed: {
      value,
      positionOf: (key) => {
        if (!isMap(contents)) return undefined
        const pair = contents.items.find((item) => isScalar(item.key) && item.key.value === key)
        const offset = pair !== undefined && isScalar(pair.key) ? pair.key.range?.[0] : undefined
        return offset === undefined ? undefined : at(lines.linePos(offset))
      }
    }
  }
}
