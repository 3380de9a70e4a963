/**
 * A request of the cluster's primary to one worker over its IPC channel,
 * paired with the worker's reply by an id: the metrics scrape
 * (`clusterScrape.ts`) and the status page (`clusterStatus.ts`) both ask
 * this way, each with message types of its own.
 */
import type { Worker } from "node:cluster"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * The request ids of one kind of request in one cluster: each `runPrimary`
 * makes its own, starting at 0. An id only pairs a reply with its request on
 * one worker's channel.
 */
export interface RequestIds {
  next: number
}

/** A reply: its type and the id of the request it answers, then what the kind of request carries. */
export interface Reply {
  readonly type: string
  readonly id: number
}

const isReplyTo = (message: unknown, type: string, id: number): message is Reply =>
  typeof message === "object" &&
  message !== null &&
  (message as { type?: unknown }).type === type &&
  (message as { id?: unknown }).id === id

/**
 * Sends `{ type: requestType, id }` to `worker`, with the next id of `ids`,
 * and waits for its `replyType` message with that id, which `read` turns into
 * the answer. None when the worker is not connected, the send fails, or no
 * reply comes within 2 seconds.
 */
export const request = <A>(
  worker: Worker,
  ids: RequestIds,
  requestType: string,
  replyType: string,
  read: (reply: Reply) => Option.Option<A>
): Effect.Effect<Option.Option<A>> =>
  Effect.callback<Option.Option<A>>((resume) => {
    const id = ids.next++
    // Every way the request ends takes the listener off the worker, which outlives many requests.
    const done = (answer: Option.Option<A>) => {
      worker.off("message", onMessage)
      resume(Effect.succeed(answer))
    }
    const onMessage = (message: unknown) => {
      if (isReplyTo(message, replyType, id)) done(read(message))
    }
    worker.on("message", onMessage)
    if (!worker.isConnected()) done(Option.none())
    else worker.send({ type: requestType, id }, undefined, (error) => error && done(Option.none()))
    return Effect.sync(() => worker.off("message", onMessage))
  }).pipe(
    Effect.timeoutOption("2 seconds"),
    Effect.map((answer) => Option.flatten(answer))
  )
