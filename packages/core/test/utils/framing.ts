/**
 * Helpers for the framing tests: a manager whose warnings are collected, and
 * answers that echo each frame.
 */
import { Effect, Logger, References } from "effect"
import { type ManagerConfig, PoolManager } from "../../src/index.ts"

const decoder = new TextDecoder()

/** A warning the manager logged, with its annotations. */
export interface Logged {
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Collects what is logged at Warning level and above into `logged`. */
export const collecting = (logged: Array<Logged>) =>
  Logger.make(({ fiber, logLevel, message }) => {
    if (logLevel !== "Warn" && logLevel !== "Error") return
    logged.push({
      message: Array.isArray(message) ? message.join(" ") : String(message),
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
    })
  })

/** A started manager whose callback answers `<frame>;` and records each frame. */
export const framed = (
  config: ManagerConfig.Input,
  seen: Array<string>,
  kind: "effect" | "sync",
  logged: Array<Logged> = []
) =>
  Effect.gen(function* () {
    const callback =
      kind === "sync"
        ? PoolManager.syncCallback((conn, body) => {
            seen.push(decoder.decode(body))
            conn.writeNow(`${decoder.decode(body)};`)
          })
        : (((conn, body) =>
            Effect.suspend(() => {
              seen.push(decoder.decode(body))
              return conn.write(`${decoder.decode(body)};`)
            }).pipe(Effect.orDie)) satisfies PoolManager.Callback)
    const manager = yield* PoolManager.make(config, callback).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([collecting(logged)]))
    )
    yield* manager.start
    return manager
  })
