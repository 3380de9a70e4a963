/**
 * The loop a worker runs for the connection it owns: wait for bytes (with the
 * deadline, and wakeable by `stop`), frame one message by the spec's rule,
 * hand it to the callback, repeat until the connection ends.
 *
 * Waiting consumes nothing (see `Connection.Transport`), and bytes are taken
 * only in synchronous steps that also frame and dispatch them, so neither a
 * deadline nor a stop can drop bytes that arrived.
 */
import { Cause, Duration, Effect, Ref } from "effect"
import { type Connection, concat, type ReadyEvent, type Transport } from "../Connection.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import type { Env, Run, Session } from "./state.ts"

type WaitEvent = ReadyEvent | "stop"

const events: Record<WaitEvent, Effect.Effect<WaitEvent>> = {
  readable: Effect.succeed("readable"),
  timeout: Effect.succeed("timeout"),
  done: Effect.succeed("done"),
  stop: Effect.succeed("stop")
}

const deadlineMillis = (config: ManagerConfig): number =>
  Duration.isFinite(config.clientsDeadline) ? Duration.toMillis(config.clientsDeadline) : Infinity

/**
 * One callback that resolves on bytes, end of stream, deadline or stop.
 * `session.wake` is the stop path: set only while this wait is pending.
 */
const awaitMessage = (run: Run, session: Session, transport: Transport, timeoutMillis: number) =>
  Effect.callback<WaitEvent>((resume) => {
    if (run.stopping) return resume(events.stop)
    let settled = false
    const settle = (event: WaitEvent) => {
      if (settled) return
      settled = true
      session.wake = undefined
      resume(events[event])
    }
    const cancel = transport.awaitReadable(timeoutMillis, settle)
    if (settled) return
    session.wake = () => {
      cancel()
      settle("stop")
    }
    return Effect.sync(() => {
      if (settled) return
      settled = true
      session.wake = undefined
      cancel()
    })
  })

/** Why a session closed its connection, for counters and debug logs. */
export type CloseReason = "peer closed" | "deadline" | "message too large" | "message limit" | "stopping"

/**
 * Serves `connection` until it ends. Never fails: every way a connection ends
 * is a close with a reason. The caller closes the transport when this exits
 * (also when it is interrupted by a drain timeout).
 */
export const serve = (env: Env, run: Run, session: Session, connection: Connection): Effect.Effect<void> => {
  const transport = connection.transport
  const counters = env.counters
  let served = 0

  const close = (reason: CloseReason, config: ManagerConfig): Effect.Effect<void> => {
    switch (reason) {
      case "peer closed":
        counters.closedByPeer++
        break
      case "deadline":
        counters.closedByDeadline++
        break
      case "message too large":
        counters.closedBySize++
        break
      case "message limit":
        counters.closedByMessageLimit++
        break
      case "stopping":
        counters.closedByStop++
        break
    }
    transport.close()
    if (reason === "message too large") {
      return Effect.logWarning("closing connection: message larger than maxMessageBytes").pipe(
        Effect.annotateLogs({ remoteAddress: transport.remoteAddress, maxMessageBytes: config.maxMessageBytes })
      )
    }
    return config.debug
      ? Effect.logDebug("connection closed").pipe(
          Effect.annotateLogs({ remoteAddress: transport.remoteAddress, reason })
        )
      : Effect.void
  }

  const onCallbackFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
    // Interruption here is the drain timeout cutting this session short: let it through.
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    counters.callbackFailures++
    transport.close()
    return Effect.logWarning("callback failed; closing its connection", cause).pipe(
      Effect.annotateLogs({ remoteAddress: transport.remoteAddress })
    )
  }

  // Frames one message starting with `first` (the spec's rule: keep reading
  // while each read filled bufferSize), but never waits for a continuation
  // that has not arrived: an exact multiple of bufferSize is delivered as is.
  const dispatch = (first: Uint8Array, config: ManagerConfig): Effect.Effect<void> => {
    const bufferSize = config.bufferSize
    let total = first.length
    let body = first
    if (first.length >= bufferSize) {
      const chunks = [first]
      while (total <= config.maxMessageBytes) {
        const chunk = transport.poll(bufferSize)
        if (chunk === undefined) break
        chunks.push(chunk)
        total += chunk.length
        if (chunk.length < bufferSize) break
      }
      if (total > config.maxMessageBytes) return close("message too large", config)
      body = concat(chunks, total)
    } else if (total > config.maxMessageBytes) {
      return close("message too large", config)
    }
    counters.messages++
    counters.bytesRead += total
    const started = performance.now()
    let handled: Effect.Effect<void, unknown, unknown>
    try {
      handled = env.callback(connection, body, total)
    } catch (defect) {
      handled = Effect.die(defect)
    }
    return Effect.matchCauseEffect(handled as Effect.Effect<void, unknown>, {
      onFailure: (cause) => {
        env.callbackDuration.observe((performance.now() - started) / 1000)
        return onCallbackFailure(cause)
      },
      onSuccess: () => {
        env.callbackDuration.observe((performance.now() - started) / 1000)
        served++
        return config.maxMessagesPerConnection > 0 && served >= config.maxMessagesPerConnection
          ? close("message limit", config)
          : next
      }
    })
  }

  const onEvent = (event: WaitEvent): Effect.Effect<void> =>
    event === "timeout" ? close("deadline", Ref.getUnsafe(env.config)) : next

  // Takes what is buffered first and waits only when nothing is, so bytes that
  // arrived before a stop or a peer close are still served.
  const next: Effect.Effect<void> = Effect.suspend(() => {
    const config = Ref.getUnsafe(env.config)
    const first = transport.poll(config.bufferSize)
    if (first !== undefined) return dispatch(first, config)
    if (transport.failure !== undefined) return close("peer closed", config)
    if (run.stopping) return close("stopping", config)
    return Effect.flatMap(awaitMessage(run, session, transport, deadlineMillis(config)), onEvent)
  })

  return next
}
