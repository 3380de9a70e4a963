/**
 * `NodeCli.serve` run in the test process on a loopback port, with its log
 * lines (and their annotations) captured: for the tests of what the command
 * logs and answers while it starts, serves and stops (internal/cliServe.ts).
 */

import { assert } from "@effect/vitest"
import { type Connection, ManagerConfig, type PoolManager } from "@pool-manager/core"
import { Cause, Effect, Exit, Fiber } from "effect"
import { NodeCli, type NodeCliConfig } from "../../src/index.ts"
import { capturingLogs, type LogLine } from "./logs.ts"
import { until } from "./socketPair.ts"

/** The fields of a `ServerConfig` a test gives, with the pool's settings as an input. */
export type Given = Omit<Partial<NodeCliConfig.ServerConfig>, "manager"> & { readonly manager?: ManagerConfig.Input }

/** A config listening on 127.0.0.1, port 0, with `given` over it. */
export const serverConfig = (given: Given = {}) =>
  Effect.map(
    ManagerConfig.make(given.manager ?? {}),
    (manager): NodeCliConfig.ServerConfig => ({
      ...given,
      manager,
      server: given.server ?? { host: "127.0.0.1", port: 0 }
    })
  )

/** Answers `OK` to every message. */
export const answerOk = (conn: Connection.Connection) => Effect.ignore(conn.write("OK"))

/** The messages of `lines`. */
export const messages = (lines: ReadonlyArray<LogLine>) => lines.map((line) => line.message)

/** The first line whose message includes `text`. */
export const lineWith = (lines: ReadonlyArray<LogLine>, text: string) =>
  lines.find((line) => line.message.includes(text))

/**
 * Forks `serve` with `given` (and `options`, `callback`), its lines going to
 * `lines`; `stop` interrupts it, waits until it stopped, and fails unless it
 * stopped cleanly (interrupted, with no defect). With `listening` (the
 * default) it waits for the listening line first.
 */
export const startServe = (
  given: Given,
  options?: NodeCli.ServeOptions,
  callback: PoolManager.Callback<never, never> | PoolManager.Stateful<any, never, never> = answerOk,
  listening = true
) =>
  Effect.gen(function* () {
    const lines: Array<LogLine> = []
    const config = yield* serverConfig(given)
    const fiber = yield* Effect.forkChild(
      NodeCli.serve(config, callback, options).pipe(Effect.provide(capturingLogs(lines)))
    )
    if (listening) {
      const ended = () => fiber.pollUnsafe()
      yield* until(() => lineWith(lines, " listening on ") !== undefined || ended() !== undefined, "the listening line")
      assert.isUndefined(ended(), `serve ended before it listened: ${String(ended())}`)
    }
    const stop = Effect.gen(function* () {
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), `a clean stop, not ${String(exit)}`)
    })
    return { lines, fiber, config, stop }
  })
