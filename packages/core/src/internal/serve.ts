/**
 * The loop a worker runs for the connection it owns: wait for bytes (with the
 * deadline, and wakeable by `stop`), frame one message by the Go original's rule (SPEC.md),
 * hand it to the callback, repeat until the connection ends. With another
 * framing (`framing.ts` does the framing; this loop only calls it), a chunk's
 * frames are handed out one after the other without waiting, in one pass of
 * the transport's event for a synchronous callback and without a resumption
 * per frame for an Effect callback that does not suspend.
 *
 * Waiting consumes nothing (see `Connection.Transport`), and bytes are taken
 * only in synchronous steps that also frame and dispatch them, so neither a
 * deadline nor a stop can drop bytes that arrived.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import * as Tracer from "effect/Tracer"
import type { Connection, ReadyEvent } from "../Connection.ts"
import * as Framing from "../Framing.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import { isConnectionError } from "../PoolError.ts"
import { concat } from "./bytes.ts"
import { withState } from "./connectionState.ts"
import * as Framer from "./framing.ts"
import type { ManagerState, ServedConnection } from "./state.ts"
import * as Tracing from "./tracing.ts"
import { setDeadline } from "./transportConnection.ts"

// Node defines `performance` as an accessor of the global object, so naming it
// costs a slow global lookup on every call, and the message path reads the
// clock (BENCHMARKS.md, "What each optimisation bought"): read it once.
const clock: { now(): number } = globalThis.performance

const deadlineMillis = (config: ManagerConfig): number =>
  Duration.isFinite(config.clientsDeadline) ? Duration.toMillis(config.clientsDeadline) : Infinity

const pollRoom = (config: ManagerConfig): number => Math.max(config.bufferSize, config.maxMessageBytes + 1)

// The framing rule of the Go original: a read that does not fill the buffer ends
// the message. A chunk stands for Go's reads of it, all full but the last.
const endsMessage = (length: number, bufferSize: number): boolean => length % bufferSize !== 0 || length === 0

/** Why a session closed its connection, for counters and debug logs. */
export type CloseReason =
  | "peer closed"
  | "deadline"
  | "write timeout"
  | "message too large"
  | "message limit"
  | "stopping"
  | "frame too large"
  | "bad framing"

/** What a wait ends with: the next message, or why the connection ends. */
type Step = Uint8Array | CloseReason

// Marks a wait that ended because a synchronous callback threw.
const THROWN: Step = new Uint8Array(0)

const noFrames: ReadonlyArray<Uint8Array> = []

/**
 * Serves `connection` until it ends. Never fails: every way a connection ends
 * is a close with a reason. The caller closes the transport when this exits
 * (also when it is interrupted by a drain timeout).
 */
export const serve = (env: ManagerState, session: ServedConnection, connection: Connection): Effect.Effect<void> => {
  const transport = connection.transport
  const counters = env.counters
  // Per-message state. A session handles one message at a time, so the hot
  // path reuses these (and the closures below) instead of allocating them.
  let config = Ref.getUnsafe(env.config)
  // The deadline in milliseconds for reads and for the callback's writes (Go's
  // SetDeadline covers both), derived again only when the config changes.
  let deadline = deadlineMillis(config)
  setDeadline(connection, deadline)
  let served = 0
  let pending: ((resumed: Effect.Effect<unknown, unknown>) => void) | undefined
  // The step a wait ended with, handed over beside the resumption rather than
  // inside it, so resuming allocates nothing.
  let ready: Step = "stopping"
  let cancelWait: (() => void) | undefined
  // What a synchronous callback threw, handed to the fiber to fail with.
  let thrown: unknown
  // Message spans: only with a connection span (a tracer is installed) and a
  // sample rate above 0; otherwise a message costs one test of `undefined`.
  const tracing = env.tracing
  const connectionSpan = session.span
  let messageSpan: Tracer.Span | undefined
  // The connection's state, from `withState`'s init (undefined without one).
  let connectionState: unknown

  const close = (reason: CloseReason): Effect.Effect<void> => {
    session.closeReason = reason
    switch (reason) {
      case "peer closed":
        counters.closedByPeer++
        break
      case "deadline":
      case "write timeout":
        counters.closedByDeadline++
        break
      case "message too large":
      case "frame too large":
        counters.closedBySize++
        break
      case "bad framing":
        counters.closedByFraming++
        break
      case "message limit":
        counters.closedByMessageLimit++
        break
      case "stopping":
        counters.closedByStop++
        break
    }
    // A peer that reads nothing cannot be sent the rest either: drop it at once.
    if (reason === "write timeout") transport.abort()
    else transport.close()
    if (reason === "message too large") {
      return Effect.logWarning("closing connection: message larger than maxMessageBytes").pipe(
        Effect.annotateLogs({ remoteAddress: transport.remoteAddress, maxMessageBytes: config.maxMessageBytes })
      )
    }
    if (reason === "frame too large" || reason === "bad framing") {
      return Effect.logWarning(
        reason === "bad framing"
          ? "closing connection: bad input to its framing"
          : "closing connection: frame too large"
      ).pipe(
        Effect.annotateLogs({
          remoteAddress: transport.remoteAddress,
          reason: framingFault,
          framing: Framing.format(framing)
        })
      )
    }
    return config.debug
      ? Effect.logDebug("connection closed").pipe(
          Effect.annotateLogs({ remoteAddress: transport.remoteAddress, reason })
        )
      : Effect.void
  }

  // The most one poll may take: a whole message over maxMessageBytes is never
  // needed, one byte past it shows that it is too large.
  let room = pollRoom(config)

  // The framing this connection keeps for its life (setConfig changes it for
  // connections admitted later). Under the Go rule there is no framer and the
  // loop below runs as it always did; otherwise `takeFrame` replaces `take`.
  const framing = config.framing
  let framer: Framer.Framer | undefined
  // Why the input went bad, for the close's log; set by a fault or a decoder `make` that threw.
  let framingFault: string | undefined
  if (framing._tag !== "GoRule") {
    try {
      framer = Framer.make(framing, config.maxMessageBytes)
    } catch (error) {
      framingFault = `the decoder's make threw: ${error instanceof Error ? error.message : String(error)}`
    }
  }
  // The frames of the last chunk not yet handed out (the framer's view, valid
  // until its next push, which happens only once they all are).
  let frames: ReadonlyArray<Uint8Array> = noFrames
  let nextFrame = 0

  // Frames one message starting with `first` (the Go original's rule: keep
  // reading while each read filled bufferSize), but never waits for a
  // continuation that has not arrived: an exact multiple of bufferSize is
  // delivered as is. Polls take whole chunks (see `endsMessage`), so a large
  // message is not cut into bufferSize pieces to be copied back together.
  const frame = (first: Uint8Array): Step => {
    const bufferSize = config.bufferSize
    const max = config.maxMessageBytes
    let total = first.length
    if (endsMessage(total, bufferSize)) return total > max ? "message too large" : first
    const chunks = [first]
    while (total <= max) {
      const chunk = transport.poll(Math.max(bufferSize, room - total))
      if (chunk === undefined) break
      chunks.push(chunk)
      total += chunk.length
      if (endsMessage(chunk.length, bufferSize)) break
    }
    return total > max ? "message too large" : concat(chunks, total)
  }

  // What the connection offers without waiting: a message, a reason to close,
  // or nothing yet. Bytes already buffered come first, so bytes that arrived
  // before a stop or a peer close are still served.
  const takeGo = (): Step | undefined => {
    const current = Ref.getUnsafe(env.config)
    if (current !== config) refresh(current)
    const first = transport.poll(room)
    if (first !== undefined) return frame(first)
    if (transport.ended) return "peer closed"
    if (env.lifecycle._tag === "Stopping") return "stopping"
    return undefined
  }
  const refresh = (current: ManagerConfig) => {
    config = current
    deadline = deadlineMillis(current)
    setDeadline(connection, deadline)
    room = pollRoom(current)
    framer?.setMaxMessageBytes(current.maxMessageBytes)
  }

  // The next frame: one left from the last chunk, else the first of the
  // chunks buffered now. A chunk that completes several frames corks the
  // transport, so the replies to all of them leave in one write. After the
  // frames that came before bad input, the connection closes.
  const takeFrame = (): Step | undefined => {
    if (nextFrame < frames.length) return frames[nextFrame++]!
    const current = Ref.getUnsafe(env.config)
    if (current !== config) refresh(current)
    const f = framer
    if (f === undefined) return "bad framing"
    while (f.fault === undefined) {
      const chunk = transport.poll(room)
      if (chunk === undefined) break
      frames = f.push(chunk)
      nextFrame = 0
      if (frames.length > 0) {
        if (frames.length > 1) transport.cork?.()
        nextFrame = 1
        return frames[0]!
      }
    }
    if (f.fault !== undefined) {
      framingFault = f.fault.detail
      return f.fault.reason === "size" ? "frame too large" : "bad framing"
    }
    // A partial frame is dropped with the close (the peer's end, a stop).
    if (transport.ended) return "peer closed"
    if (env.lifecycle._tag === "Stopping") return "stopping"
    return undefined
  }
  const take = framing._tag === "GoRule" ? takeGo : takeFrame

  // A message's bookkeeping, the same for both kinds of callback.
  const beginMessage = (message: Uint8Array) => {
    counters.messages++
    counters.bytesRead += message.length
    session.messages++
    session.bytesRead += message.length
    if (connectionSpan !== undefined) sampleMessage(message.length)
    session.callbackStarted = clock.now()
  }
  const sampleMessage = (length: number) => {
    const rate = config.messageSpanSampleRate
    if (rate === 0 || Math.random() >= rate) return
    messageSpan = Tracing.message(tracing!, connectionSpan!, length)
  }
  const endMessageSpan = (exit: Exit.Exit<unknown, unknown>) => {
    tracing!.end(messageSpan!, exit)
    messageSpan = undefined
  }
  const observeDuration = () => env.callbackDuration.observe((clock.now() - session.callbackStarted) / 1000)
  // Records a message handled; true when the connection reached maxMessagesPerConnection.
  const endMessage = (): boolean => {
    observeDuration()
    if (messageSpan !== undefined) endMessageSpan(Exit.void)
    served++
    return config.maxMessagesPerConnection > 0 && served >= config.maxMessagesPerConnection
  }

  const finish = (step: Step) => {
    const resume = pending!
    pending = undefined
    cancelWait = undefined
    session.wake = undefined
    ready = step
    resume(handled)
  }

  const onReady = (event: ReadyEvent) => {
    if (pending === undefined) return
    if (event === "timeout") return finish("deadline")
    const sync = env.sync
    while (true) {
      const step = take()
      if (step === undefined) break
      // A synchronous callback answers here, and the fiber sleeps on; anything
      // else (an Effect callback, a close, a throw) resumes it.
      if (sync === undefined || typeof step === "string") return finish(step)
      beginMessage(step)
      try {
        sync(connection, step, step.length, connectionState)
      } catch (defect) {
        // Counted, timed and traced as any callback failure, by the fiber.
        thrown = defect
        return finish(THROWN)
      }
      if (endMessage()) return finish("message limit")
    }
    cancelWait = transport.awaitReadable(deadline, onReady) // woken for nothing: wait on
  }

  // The stop path: set as `session.wake` only while a wait is pending.
  const wake = () => {
    if (pending === undefined) return
    cancelWait?.()
    finish(take() ?? "stopping")
  }

  // One callback per message that resolves with the message, or with why the
  // connection ends: bytes, end of stream, deadline or stop.
  const nextStep = Effect.callback<unknown, unknown>((resume) => {
    const step = take()
    if (step !== undefined) {
      ready = step
      return resume(handled)
    }
    pending = resume
    session.wake = wake
    cancelWait = transport.awaitReadable(deadline, onReady)
    // No canceller: the only interruption is a drain timeout cutting the
    // session short, after which the transport is aborted, which ends this
    // wait; a late resume of an interrupted fiber is ignored. Leaving it out
    // saves a finalizer per message.
  })

  // The loop is built once: `nextStep` waits, then resumes with `handled`,
  // which runs the callback's effect (or a close), and the handlers of
  // `matchCauseEffect` decide whether to go round again. A message costs no
  // control-flow objects of its own, and resuming straight into `handled`
  // takes one step of Effect's run loop fewer than a `flatMap` after the wait.
  let closing = false

  const onCallbackFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
    if (closing) return Effect.failCause(cause as Cause.Cause<never>) // a close's own log failed: nothing to add
    closing = true
    observeDuration()
    if (messageSpan !== undefined) endMessageSpan(Exit.failCause(cause))
    // The drain timeout's interruption never gets here (an interrupted fiber
    // skips these handlers): an interruption here is the callback's own (it
    // joined an interrupted fiber, say), a failure of the callback like any other.
    // A write that failed because the peer went away is the peer closing, not
    // the callback failing: no warning for every client that resets mid-reply.
    const error = Cause.findErrorOption(cause)
    if (error._tag === "Some" && isConnectionError(error.value)) {
      if (error.value.reason === "Timeout") return close("write timeout")
      if (transport.ended) return close("peer closed")
    }
    counters.callbackFailures++
    session.closeReason = "callback failed"
    transport.close()
    return Effect.logWarning("callback failed; closing its connection", cause).pipe(
      Effect.annotateLogs({ remoteAddress: transport.remoteAddress })
    )
  }

  // One parameter, so matchCauseEffect calls it as is instead of wrapping it.
  const onCallbackSuccess = (_: unknown): Effect.Effect<void> => {
    if (closing) return Effect.void
    if (endMessage()) {
      closing = true
      return close("message limit")
    }
    return loop
  }
  // With a framing, a frame already buffered is taken at once, without the
  // wait's callback: a chunk's frames cost one resumption in all.
  const onFrameSuccess = (_: unknown): Effect.Effect<void> => {
    if (closing) return Effect.void
    if (endMessage()) {
      closing = true
      return close("message limit")
    }
    if (nextFrame < frames.length) {
      ready = frames[nextFrame++]!
      return again
    }
    return loop
  }

  const handle = (): Effect.Effect<unknown, unknown> => {
    const step = ready
    if (step === THROWN) return Effect.die(thrown) // its message was begun in onReady
    if (typeof step === "string") {
      closing = true
      return close(step)
    }
    beginMessage(step)
    try {
      const effect = env.callback(connection, step, step.length, connectionState) as Effect.Effect<unknown, unknown>
      // The callback's own spans nest under the message's. (Not with
      // `Effect.withParentSpan`, which captures a stack trace per call.)
      return messageSpan === undefined || env.sync !== undefined
        ? effect
        : Effect.provideService(effect, Tracer.ParentSpan, messageSpan)
    } catch (defect) {
      return Effect.die(defect)
    }
  }

  // Run inside the fiber, not by the resumer: a message is only taken up by a
  // fiber that is still running it (a late resume of an interrupted one is ignored).
  const handled = Effect.suspend(handle)
  const onSuccess = framing._tag === "GoRule" ? onCallbackSuccess : onFrameSuccess
  const loop: Effect.Effect<void> = Effect.matchCauseEffect(nextStep, { onFailure: onCallbackFailure, onSuccess })
  // The loop entered with `ready` already set (the next buffered frame).
  const again: Effect.Effect<void> = Effect.matchCauseEffect(handled, { onFailure: onCallbackFailure, onSuccess })
  const init = env.init
  return init === undefined
    ? loop
    : withState(env, init, session, connection, (state) => (connectionState = state), loop)
}
