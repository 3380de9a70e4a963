/**
 * Every flag also read from the environment, as `POOL_MANAGER_<FLAG>` (the
 * flag's name in upper snake case: `--max-workers` is
 * `POOL_MANAGER_MAX_WORKERS`). The tables of flags (`cliFlags.ts`,
 * `serverFlags.ts`) wrap each row's flag with `withEnv`, so a new row gets its
 * variable without another line.
 *
 * The variable is read with Effect's `Config` from the fiber's
 * `ConfigProvider` (`ConfigProvider.fromEnv()` unless a program provides
 * another), only when the flag is not given: flag > environment. Its text is
 * then parsed by the flag's own parser, so a variable takes exactly what the
 * flag takes (durations with a unit, `reject|queue`, a file that must exist,
 * `true`/`false` for a switch), and a bad value is an error naming the
 * variable. (`Flag.withFallbackConfig` is not used: its `Config` would need a
 * second parser per type, and its error names the flag, not the variable.)
 */

import * as Config from "effect/Config"
import * as CliError from "effect/cli/CliError"
import type { Environment } from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Effect from "effect/Effect"
import type * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"

// Flags that make the program do something else than serve: a variable left
// in a unit's environment would stop the server from ever starting.
const actions: ReadonlyArray<string> = ["check", "check-config"]

/** The prefix of every variable. */
export const prefix = "POOL_MANAGER_"

/** The variable of the flag named `name` (without its dashes): `max-workers` is `POOL_MANAGER_MAX_WORKERS`. */
export const envName = (name: string): string => `${prefix}${name.toUpperCase().replaceAll("-", "_")}`

const expected = (error: CliError.CliError): string =>
  error._tag === "InvalidValue" ? error.expected.replace(/^Expected:?\s*/, "") : error.message

/**
 * `flag` (the optional flag named `name`), falling back to the variable
 * `envName(name)` when the flag is not given. An empty variable counts as
 * not set, as shells and unit files leave variables empty to unset them.
 */
export const withEnv = <A>(flag: Flag.Flag<Option.Option<A>>, name: string): Flag.Flag<Option.Option<A>> => {
  if (actions.includes(name)) return flag
  const variable = envName(name)
  const fromEnv = Config.option(Config.String(variable)).pipe(
    Effect.mapError((error) => new CliError.ValidationError({ message: `cannot read ${variable}: ${error.message}` })),
    Effect.flatMap(
      (text): Effect.Effect<Option.Option<A>, CliError.CliError, Environment> =>
        Option.isNone(text) || text.value.trim() === ""
          ? Effect.succeedNone
          : flag.parse({ flags: { [name]: [text.value.trim()] }, arguments: [] }).pipe(
              Effect.map(([, value]) => value),
              Effect.mapError(
                (error) =>
                  new CliError.ValidationError({
                    message: `Invalid value for environment variable ${variable}: "${text.value}". Expected: ${expected(error)}`
                  })
              )
            )
    )
  )
  return Flag.mapEffect(flag, (value) => (Option.isSome(value) ? Effect.succeed(value) : fromEnv))
}

/**
 * `--log-level` (Effect's own global flag, outside the tables) from
 * `POOL_MANAGER_LOG_LEVEL`, for when the flag is not given: its parser, and a
 * bad value as a usage error of the command `name`.
 */
export const logLevelFromEnv = (
  name: string
): Effect.Effect<Option.Option<LogLevel.LogLevel>, CliError.ShowHelp, Environment> =>
  withEnv(GlobalFlag.LogLevel.flag, "log-level")
    .parse({ flags: {}, arguments: [] })
    .pipe(
      Effect.map(([, level]) => level),
      Effect.mapError((error) =>
        error._tag === "ShowHelp" ? error : new CliError.ShowHelp({ commandPath: [name], errors: [error] })
      )
    )
