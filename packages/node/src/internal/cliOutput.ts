/**
 * What the command prints when it cannot start, written for an operator: a
 * bad flag or value is one line (the error) and one line pointing at
 * `--help`, not the whole help, with exit code 2 (the usual usage-error
 * code); a fatal startup error (config file, TLS files, port in use) is one
 * line with exit code 1. In JSON mode (`--log-format json`, or
 * `POOL_MANAGER_LOG_FORMAT=json`) both are JSON lines like the logs, so
 * every line the program writes is JSON.
 */

import * as Config from "effect/Config"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { envName } from "./cliEnv.ts"

/** Whether `args` (or, without the flag, the environment) ask for JSON logs. */
export const jsonRequested = (args: ReadonlyArray<string>): Effect.Effect<boolean> => {
  const index = args.lastIndexOf("--log-format")
  const inline = args.findLast((arg) => arg.startsWith("--log-format="))
  if (inline !== undefined && args.lastIndexOf(inline) > index) return Effect.succeed(inline.endsWith("=json"))
  if (index >= 0) return Effect.succeed(args[index + 1] === "json")
  return Config.option(Config.String(envName("log-format"))).pipe(
    Effect.map((value) => Option.exists(value, (text) => text.trim() === "json")),
    Effect.orElseSucceed(() => false)
  )
}

const jsonErrors = Logger.withConsoleError(Logger.formatJson)

/** Logs `message` at Fatal as one JSON line on stderr (Effect's structured format, as the logs). */
export const logJsonFatal = (message: string, fields: Readonly<Record<string, unknown>> = {}): Effect.Effect<void> =>
  Effect.logFatal(message).pipe(
    Effect.annotateLogs(fields),
    Effect.provideService(Logger.CurrentLoggers, new Set([jsonErrors]))
  )

/** Prints help and version as usual; a usage error as its message and one line pointing at `--help`. */
export const presenter = (name: string, json: boolean): CliOutput.Presenter => ({
  present: (event) =>
    event._tag !== "InvalidInvocation"
      ? CliOutput.defaultPresenter.present(event)
      : Effect.forEach(
          event.errors,
          (error) =>
            json
              ? logJsonFatal(error.message, { help: `${name} --help` })
              : Effect.sync(() => console.error(`${name}: ${error.message}`)),
          { discard: true }
        ).pipe(
          Effect.andThen(json ? Effect.void : Effect.sync(() => console.error(`Run '${name} --help' for the flags.`)))
        )
})

/** A fatal error already written as a JSON line: the runtime neither prints it again nor exits with 0. */
export class ReportedError extends Data.TaggedError("ReportedError")<{ readonly message: string }> {
  override readonly [Runtime.errorReported] = false
  override readonly [Runtime.errorExitCode] = 1
}

/** A fatal startup error (config file, TLS files, port in use) as the command's error: its message is the line shown. */
export const userError = (error: { readonly message: string }): CliError.UserError =>
  new CliError.UserError({ cause: error, userMessage: error.message })

/** A usage error (a bad flag, value or variable) exits with code 2. */
const usageExitCode = (error: unknown): void => {
  if (CliError.isCliError(error) && error._tag === "ShowHelp" && error.errors.length > 0) {
    Object.assign(error, { [Runtime.errorExitCode]: 2 })
  }
}

/** Runs a command's program (`Command.run`/`runWith`) with this output. */
export const withOperatorOutput =
  (name: string, args: ReadonlyArray<string>) =>
  <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(jsonRequested(args), (json) =>
      program.pipe(
        Effect.tapError((error) => Effect.sync(() => usageExitCode(error))),
        Effect.provideService(CliOutput.Presenter, presenter(name, json))
      )
    )
