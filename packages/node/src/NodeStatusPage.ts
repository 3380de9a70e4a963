/**
 * A live status page for operators, served by `NodeMetricsServer` at `GET /`
 * beside `/metrics`: workers, busy and idle against min and max, accept and
 * reject rates, the queue, connections closed by reason, and the current
 * configuration, redrawn every second from `GET /stats.json`.
 *
 * One self-contained document (HTML, CSS and a small script; no CDN, no
 * front-end build), so it works where the server cannot reach the internet.
 * `/stats.json` is a `Snapshot` of `PoolManager.stats` and `config`: the page
 * keeps its history (two minutes) itself, the server keeps none.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeMetricsServer, NodeStatusPage } from "@pool-manager/node"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const manager = yield* PoolManager.PoolManager
 *   const server = yield* NodeMetricsServer.make({
 *     port: 9464,
 *     health: Effect.succeed({ healthy: true, detail: "ok" }),
 *     status: NodeStatusPage.snapshot(manager)
 *   })
 *   yield* Effect.log(`status page at ${NodeMetricsServer.url(server.address)}/`)
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import type * as PoolManager from "@pool-manager/core/PoolManager"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { html } from "./internal/statusPage.ts"

/**
 * What `/stats.json` answers: when it was taken (milliseconds since the
 * epoch), the manager's stats, and its configuration as JSON (durations in
 * milliseconds).
 *
 * @category models
 * @since 0.1.0
 */
export interface Snapshot {
  readonly time: number
  readonly stats: PoolManager.PoolStats
  readonly config: ReturnType<typeof ManagerConfig.toJson>
  /**
   * With `--processes`: a row per process (its own stats and configuration;
   * none for a process that did not answer), while `stats` adds them up and
   * `config` adds their worker bounds up.
   *
   * @since 0.2.0
   */
  readonly processes?: ReadonlyArray<ProcessSnapshot> | undefined
}

/**
 * One process of a cluster in a `Snapshot`.
 *
 * @category models
 * @since 0.2.0
 */
export interface ProcessSnapshot {
  /** The process's number, 1 to N, as the `process` label of the metrics. */
  readonly process: number
  readonly stats?: PoolManager.PoolStats | undefined
  readonly config?: ReturnType<typeof ManagerConfig.toJson> | undefined
}

/**
 * Takes a `Snapshot` of `manager`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const snapshot = (manager: PoolManager.PoolManager["Service"]): Effect.Effect<Snapshot> =>
  Effect.all({
    time: Clock.currentTimeMillis,
    stats: manager.stats,
    config: Effect.map(manager.config, ManagerConfig.toJson)
  })

/**
 * The page's document. It fetches `stats.json` relative to its own URL.
 *
 * @category constants
 * @since 0.1.0
 */
export const document: string = html
