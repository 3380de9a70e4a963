/**
 * The scrape protocol of `NodeCluster`: the primary asks each worker for its
 * metrics over the IPC channel, and merges the answers into one Prometheus
 * text with a `process` label per sample.
 */
import type { Worker } from "node:cluster"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Scrape } from "../NodeCluster.ts"
import * as WorkerRequest from "./workerRequest.ts"

const scrapeRequest = "pool-manager:scrape"
const scrapeReply = "pool-manager:scrape-reply"

interface ScrapeReply {
  readonly type: typeof scrapeReply
  readonly id: number
  readonly metrics: string
  readonly running: boolean
}

// Loaded at the first scrape: the module brings Effect's HTTP stack (its
// `/metrics` route), which a process that is never scraped has no use for.
const formatMetrics = Effect.flatMap(
  Effect.promise(() => import("effect/observability/PrometheusMetrics")),
  (PrometheusMetrics) => PrometheusMetrics.format()
)

/** In a worker: answers the primary's scrapes until the scope closes (`NodeCluster.answerScrapes`). */
export const answer = (running: Effect.Effect<boolean>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const onMessage = (message: unknown) => {
      const request = message as { type?: unknown; id?: unknown } | null
      if (request?.type !== scrapeRequest || typeof request.id !== "number") return
      const id = request.id
      Effect.runForkWith(context)(
        Effect.gen(function* () {
          const reply: ScrapeReply = {
            type: scrapeReply,
            id,
            metrics: yield* formatMetrics,
            running: yield* running
          }
          // The primary may be gone already; there is nobody to tell then.
          yield* Effect.sync(() => process.send?.(reply, undefined, {}, () => {}))
        })
      )
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("message", onMessage)),
      () => Effect.sync(() => process.off("message", onMessage))
    )
  })

const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$/

/** Merges the workers' Prometheus texts (`NodeCluster.aggregate`). */
export const aggregate = (scrapes: ReadonlyArray<Omit<Scrape, "running">>): string => {
  const families = new Map<string, { header: Array<string>; samples: Array<string> }>()
  const family = (name: string) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { header: [], samples: [] }
      families.set(name, found)
    }
    return found
  }
  for (const scrape of scrapes) {
    let current: string | undefined
    for (const line of scrape.metrics.split("\n")) {
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line)
      if (comment !== null) {
        current = comment[2]!
        const header = family(current).header
        if (!header.some((seen) => seen.startsWith(`# ${comment[1]} `))) header.push(line)
        continue
      }
      const match = sample.exec(line)
      if (match === null) continue
      const [, name, labels, value, timestamp] = match
      const label = `process="${scrape.process}"`
      const merged = labels === undefined || labels === "{}" ? `{${label}}` : `{${label},${labels.slice(1)}`
      family(current ?? name!).samples.push(`${name}${merged} ${value}${timestamp ?? ""}`)
    }
  }
  const lines: Array<string> = []
  for (const { header, samples } of families.values()) lines.push(...header, ...samples)
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}

/**
 * A way to ask workers for their metrics, with request ids of its own: each
 * cluster (`runPrimary`) makes one, so the ids are its own and start at 0.
 */
export const makeAsk = (): ((worker: Worker, number: number) => Effect.Effect<Option.Option<Scrape>>) => {
  const ids: WorkerRequest.RequestIds = { next: 0 }
  // Asks one worker for its metrics; none if it does not answer within 2 seconds.
  return (worker, number) =>
    WorkerRequest.request(worker, ids, scrapeRequest, scrapeReply, (reply) => {
      const { metrics, running } = reply as ScrapeReply
      return Option.some({ process: number, metrics, running })
    })
}
