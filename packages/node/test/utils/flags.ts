/**
 * The command line's flags (`NodeCliConfig.flags()`) parsed in the test
 * process, with an environment of the test's own (or any `ConfigProvider`) in
 * place of the process's: the settings they give, or the error's message.
 */
import { NodeServices } from "@effect/platform-node"
import { ConfigProvider, Effect } from "effect"
import { CliError, Command } from "effect/cli"
import { NodeCliConfig } from "../../src/index.ts"

/** Parses `args` with `env` as the environment (or another provider); the settings, or the error's message. */
export const parseFlags = (
  args: ReadonlyArray<string>,
  env: Record<string, string> | ConfigProvider.ConfigProvider = {}
) =>
  Effect.gen(function* () {
    let settings: NodeCliConfig.Settings | undefined
    const cli = Command.make("t", NodeCliConfig.flags(), (given) =>
      Effect.sync(() => {
        settings = given
      })
    )
    const result = yield* Command.runWith(cli, { version: "test", renderErrors: false })(args).pipe(
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        "load" in env ? (env as ConfigProvider.ConfigProvider) : ConfigProvider.fromEnv({ env })
      ),
      Effect.as(undefined),
      Effect.catch((error) =>
        Effect.succeed(
          CliError.isCliError(error) && error._tag === "ShowHelp"
            ? error.errors.map((e) => e.message).join("\n")
            : String(error)
        )
      )
    )
    return settings === undefined ? { error: result ?? "no settings" } : { settings }
  }).pipe(Effect.provide(NodeServices.layer))
