/**
 * A configuration file for the pool, JSON or YAML, and reloading it on SIGHUP.
 *
 * The file is one object of `ManagerConfig` fields: in JSON,
 * `{ "maxWorkersCount": 10, "clientsDeadline": "3 seconds" }`; a file named
 * `*.yaml` or `*.yml` is YAML (`maxWorkersCount: 10`, `clientsDeadline: 3s`).
 * Durations are numbers of milliseconds or strings, in `Duration`'s spelling
 * ("3 seconds") or the CLI's ("3s", "500ms"). Every field is optional; an
 * unknown field, a bad value or `minWorkersCount` above a non-zero
 * `maxWorkersCount` is an error naming the file, the field and its line and
 * column, so a typo never passes silently. A file that does not parse is
 * named with the line and column of the error, never with its content.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs/promises"
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as ConfigText from "./internal/configText.ts"
import * as Signals from "./internal/signals.ts"
import { parseDuration } from "./NodeCliConfig.ts"

/**
 * The file could not be read, is not JSON (or YAML), or is not a valid configuration.
 *
 * @category errors
 * @since 0.1.0
 */
export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `config file ${this.path}: ${this.reason}`
  }
}

const durationFields = ["clientsDeadline", "idleWorkerTimeout", "drainTimeout", "queueTimeout"] as const

// A key is shown only when it looks like a field name (a typo of one): the
// keys of a file that is no config at all (say a password file read as YAML)
// are its content.
const shownKey = (key: string): string => (/^[A-Za-z][A-Za-z0-9_-]{0,39}$/.test(key) ? JSON.stringify(key) : "(a key)")

/**
 * Parses and validates the text of a config file (`path` is only for
 * messages, and for its format: YAML when it ends in `.yaml` or `.yml`, JSON
 * otherwise). Returns the fields it sets, durations as `Duration`s, ready to
 * be applied over other settings with `ManagerConfig.make`.
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (text: string, path: string): Effect.Effect<ManagerConfig.Input, ConfigFileError> =>
  Effect.gen(function* () {
    const result = ConfigText.parseText(text, path)
    if (result._tag === "Invalid") return yield* new ConfigFileError({ path, reason: result.reason })
    const { value, positionOf } = result.parsed
    const kind = ConfigText.formatOf(path) === "yaml" ? "a YAML mapping" : "a JSON object"
    if (!Predicate.isObject(value) || Array.isArray(value)) {
      return yield* new ConfigFileError({ path, reason: `expected ${kind} of ManagerConfig fields` })
    }
    // A field with where it is in the file, e.g. `maxWorkers (line 3, column 1)`.
    const located = (field: string, shown = field) => {
      const position = positionOf(field)
      return position === undefined ? shown : `${shown} (${position})`
    }
    const unknown = Object.keys(value).filter((field) => !Object.hasOwn(ManagerConfig.defaults, field))
    if (unknown.length > 0) {
      return yield* new ConfigFileError({
        path,
        reason: `unknown field ${unknown.map((field) => located(field, shownKey(field))).join(", ")} (known: ${Object.keys(ManagerConfig.defaults).join(", ")})`
      })
    }
    const input: Record<string, unknown> = { ...value }
    // The CLI's spellings ("3s") too; anything else is left for ManagerConfig to reject.
    for (const field of durationFields) {
      const entry = input[field]
      if (typeof entry === "string") {
        const parsed = parseDuration(entry)
        if (Option.isSome(parsed)) input[field] = parsed.value
      }
    }
    // Validated on its own, so an error names this file and not a flag.
    yield* ManagerConfig.make(input as ManagerConfig.Input).pipe(
      Effect.mapError(
        (error) =>
          new ConfigFileError({
            path,
            reason: error.issues.map((issue) => `${located(issue.field)}: ${issue.message}`).join("; ")
          })
      )
    )
    return input as ManagerConfig.Input
  })

/**
 * Reads and parses the config file at `path`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const read = (path: string): Effect.Effect<ManagerConfig.Input, ConfigFileError> =>
  Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (cause) => new ConfigFileError({ path, reason: `cannot read it (${(cause as Error).message})` })
  }).pipe(Effect.flatMap((text) => parse(text, path)))

/**
 * Until the scope closes, re-reads the file at `path` on every SIGHUP and
 * hands its fields to `apply`. An unreadable or invalid file, or a failure of
 * `apply`, is logged at Error level and changes nothing. Reloads run one at a
 * time, in the context this was called in.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeConfigFile } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * // /etc/pool.json: { "maxWorkersCount": 50, "clientsDeadline": "5s" }
 * // Applied at start, then again on every `kill -HUP <pid>`; a bad file is
 * // logged and the running configuration kept.
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.PoolManager
 *   yield* manager.setConfig(yield* NodeConfigFile.read("/etc/pool.json"))
 *   yield* NodeConfigFile.reloadOnSighup("/etc/pool.json", (input) => Effect.asVoid(manager.setConfig(input)))
 *   return yield* Effect.never
 * }).pipe(Effect.scoped)
 * ```
 *
 * @category reloading
 * @since 0.1.0
 */
export const reloadOnSighup = <E, R>(
  path: string,
  apply: (input: ManagerConfig.Input) => Effect.Effect<void, E, R>,
  /** Told whether each reload was applied (for the `pool_config_last_reload_*` metrics). @since 0.2.0 */
  onResult?: ((applied: boolean) => void) | undefined
): Effect.Effect<void, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    const lock = yield* Semaphore.make(1)
    const reload = lock.withPermit(
      Effect.logInfo("SIGHUP: reloading the config file").pipe(
        Effect.andThen(read(path)),
        Effect.flatMap(apply),
        Effect.tap(() => Effect.sync(() => onResult?.(true))),
        Effect.catchCause((cause) => {
          onResult?.(false)
          // The message says what is wrong with the file; a stack trace would only bury it.
          const error = Cause.squash(cause)
          const message = error instanceof Error ? error.message : String(error)
          return Effect.logError(`config reload failed, keeping the running configuration: ${message}`)
        }),
        Effect.annotateLogs({ configFile: path })
      )
    )
    yield* Signals.onSighup(reload)
  })
