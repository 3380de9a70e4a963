/**
 * The status page under `--processes`: the primary asks each worker for its
 * `NodeStatusPage` snapshot over the IPC channel (as it asks for metrics, see
 * `clusterScrape.ts`, with messages of its own) and answers `/stats.json`
 * with their sum and a row per process.
 */
import type { Worker } from "node:cluster"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as NodeStatusPage from "../NodeStatusPage.ts"
import * as WorkerRequest from "./workerRequest.ts"

const statusRequest = "pool-manager:status"
const statusReply = "pool-manager:status-reply"

interface StatusReply {
  readonly type: typeof statusReply
  readonly id: number
  readonly snapshot: NodeStatusPage.Snapshot | undefined
}

/** In a worker: answers the primary's status requests until the scope closes. */
export const answer = (
  snapshot: Effect.Effect<NodeStatusPage.Snapshot | undefined>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const onMessage = (message: unknown) => {
      const request = message as { type?: unknown; id?: unknown } | null
      if (request?.type !== statusRequest || typeof request.id !== "number") return
      const id = request.id
      Effect.runForkWith(context)(
        Effect.flatMap(snapshot, (taken) =>
          // The primary may be gone already; there is nobody to tell then.
          Effect.sync(() => process.send?.({ type: statusReply, id, snapshot: taken }, undefined, {}, () => {}))
        )
      )
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("message", onMessage)),
      () => Effect.sync(() => process.off("message", onMessage))
    )
  })

// Asks one worker for its snapshot, with the next id of `ids`; none if it does not answer within 2 seconds.
const ask = (worker: Worker, ids: WorkerRequest.RequestIds): Effect.Effect<Option.Option<NodeStatusPage.Snapshot>> =>
  WorkerRequest.request(worker, ids, statusRequest, statusReply, (reply) =>
    Option.fromUndefinedOr((reply as StatusReply).snapshot)
  )

/**
 * The processes' snapshots as one: their stats added up (running while any
 * process runs), the configuration of the first with the worker bounds added
 * up (the capacity of them all; a maximum of 0, unlimited, stays 0), and a
 * row per configured process, without stats for one that did not answer.
 * Undefined while none answers.
 */
export const aggregate = (
  answers: ReadonlyArray<readonly [number, NodeStatusPage.Snapshot | undefined]>,
  processes: number,
  time: number
): NodeStatusPage.Snapshot | undefined => {
  const answered = answers.flatMap(([process, snapshot]) =>
    snapshot === undefined ? [] : [[process, snapshot] as const]
  )
  const first = answered[0]?.[1]
  if (first === undefined) return undefined
  const stats = Object.fromEntries(
    Object.entries(first.stats).map(([key, value]) => [
      key,
      typeof value === "number"
        ? answered.reduce(
            (sum, [, snapshot]) => sum + (snapshot.stats[key as keyof typeof snapshot.stats] as number),
            0
          )
        : answered.some(([, snapshot]) => snapshot.stats[key as keyof typeof snapshot.stats] === true)
    ])
  ) as unknown as NodeStatusPage.Snapshot["stats"]
  const sum = (read: (snapshot: NodeStatusPage.Snapshot) => number) =>
    answered.reduce((total, [, snapshot]) => total + read(snapshot), 0)
  const unlimited = answered.some(([, snapshot]) => snapshot.config.maxWorkersCount === 0)
  const byProcess = new Map(answered)
  return {
    time,
    stats,
    config: {
      ...first.config,
      minWorkersCount: sum((snapshot) => Number(snapshot.config.minWorkersCount)),
      maxWorkersCount: unlimited ? 0 : sum((snapshot) => Number(snapshot.config.maxWorkersCount))
    },
    processes: Array.from({ length: processes }, (_, i) => {
      const snapshot = byProcess.get(i + 1)
      return snapshot === undefined
        ? { process: i + 1 }
        : { process: i + 1, stats: snapshot.stats, config: snapshot.config }
    })
  }
}

/**
 * In the primary: a collector that asks every worker, then `aggregate`s
 * their answers. Each cluster (`runPrimary`) makes one, so its request ids
 * are its own and start at 0.
 */
export const makeCollect = (): ((
  workers: ReadonlyArray<readonly [number, Worker]>,
  processes: number
) => Effect.Effect<NodeStatusPage.Snapshot | undefined>) => {
  const ids = { next: 0 }
  return (workers, processes) =>
    Effect.forEach(
      workers,
      ([number, worker]) => Effect.map(ask(worker, ids), (answer) => [number, Option.getOrUndefined(answer)] as const),
      { concurrency: "unbounded" }
    ).pipe(Effect.map((answers) => aggregate(answers, processes, Date.now())))
}
