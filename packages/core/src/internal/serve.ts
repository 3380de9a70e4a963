/**
 * The loop a worker runs for the connection it owns: wait for bytes (with the
 * deadline, and wakeable by `stop`), frame one message by the Go original's
 * rule (`goRule.ts`, SPEC.md), hand it to the callback, repeat until the
 * connection ends. With another framing (`framing.ts`), a chunk's
 * frames are handed out one after the other without waiting, in one pass of
 * the transport's event: a synchronous callback is called there, and an
 * Effect callback's effect runs there (`runNow`: a write the transport takes
 * whole, a success, else a fiber of the effect's own), so the connection's
 * fiber is resumed only for an effect that suspends.
 *
 * Waiting consumes nothing (see `Connection.Transport`), and bytes are taken
 * only in synchronous steps that also frame and dispatch them, so neither a
 * deadline nor a stop can drop bytes that arrived.
 *
 * One `Session` per connection holds the loop's state in its fields; its
 * methods are grouped by what they do: take (poll and frame what arrived),
 * wait (for bytes, the deadline or a stop), dispatch (count, time and trace a
 * message, and run the callback of either kind), and close.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Tracer from "effect/Tracer"
import type { Connection, ReadyEvent, Transport } from "../Connection.ts"
import * as Framing from "../Framing.ts"
import type { ManagerConfig } from "../ManagerConfig.ts"
import { isConnectionError } from "../PoolError.ts"
import { type CloseReason, count } from "./closeReason.ts"
import { withState } from "./connectionState.ts"
import type { Counters } from "./counters.ts"
import * as Framer from "./framing.ts"
import { frameGoMessage, pollRoom } from "./goRule.ts"
import type { ManagerState, ServedConnection } from "./state.ts"
import * as Tracing from "./tracing.ts"
import { setDeadline, TransportConnection } from "./transportConnection.ts"

// Node defines `performance` as an accessor of the global object, so naming it
// costs a slow global lookup on every call, and the message path reads the
// clock (BENCHMARKS.md, "What each optimisation bought"): read it once.
const clock: { now(): number } = globalThis.performance

const deadlineMillis = (config: ManagerConfig): number =>
  Duration.isFinite(config.clientsDeadline) ? Duration.toMillis(config.clientsDeadline) : Infinity

/** What a wait ends with: the next message, or why the connection ends. */
type Next = Uint8Array | CloseReason

// Marks a wait that ended because a synchronous callback threw.
const CALLBACK_THREW: Next = new Uint8Array(0)

const noFrames: ReadonlyArray<Uint8Array> = []

// The `writer` of a connection `Connection.make` did not build: runs nothing.
const asIs: Pick<TransportConnection, "runNow" | "isDrainWait"> = {
  runNow: (effect) => effect,
  isDrainWait: () => false
}

// Whether a callback's effect is an Exit of this copy of effect: its `_tag`,
// then its prototype. `Exit.isExit` asks `in` for a key most effects lack,
// which V8 answers at a megamorphic site by walking the prototype chain, and
// `Object.getPrototypeOf` of any effect calls into the runtime: 270 and 110
// instructions per message (BENCHMARKS.md, "Counted instructions"). An Exit
// of another copy of effect runs in a fiber, as any other effect.
const successProto: unknown = Object.getPrototypeOf(Exit.void)
const failureProto: unknown = Object.getPrototypeOf(Exit.fail(undefined))
const isExit = (effect: Effect.Effect<unknown, unknown>): effect is Exit.Exit<unknown, unknown> => {
  const tag = (effect as { readonly _tag?: unknown })._tag
  return tag !== undefined && Object.getPrototypeOf(effect) === (tag === "Success" ? successProto : failureProto)
}

// The connection's fiber waiting for an effect that went on in a fiber of its
// own: interrupted (by the drain timeout), it interrupts that one too.
const joinInterrupting = (fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<unknown, unknown> =>
  Effect.onInterrupt(Fiber.join(fiber), () => Fiber.interrupt(fiber))

/**
 * Serves `connection` until it ends. Never fails: every way a connection ends
 * is a close with a reason. The caller closes the transport when this exits
 * (also when it is interrupted by a drain timeout).
 */
export const serve = (state: ManagerState, served: ServedConnection, connection: Connection): Effect.Effect<void> => {
  const session = new Session(state, served, connection)
  // Once the loop has ended (the drain timeout interrupts it mid-wait), a late
  // event must not hand a message to a callback (see `resumeWith`).
  const loop = Effect.onExit(
    Effect.withFiber((fiber) => session.begin(fiber)),
    () => {
      session.ended = true
      return Effect.void
    }
  )
  const init = state.init
  return init === undefined
    ? loop
    : withState(state, init, served, connection, (value) => (session.connectionState = value), loop)
}

/**
 * The state of one connection's loop. A session handles one message at a
 * time, so the message path reuses these fields (and the functions bound in
 * the constructor) instead of allocating them per message.
 */
class Session {
  readonly state: ManagerState
  readonly served: ServedConnection
  readonly connection: Connection
  readonly transport: Transport
  // What runs the connection's writes without the fiber: the connection, as
  // `Connection.make` built it; for another implementation of `Connection`,
  // nothing (its effects are the fiber's).
  readonly writer: Pick<TransportConnection, "runNow" | "isDrainWait">
  readonly counters: Counters
  // The config of the last message, and what is derived from it, again only
  // when the config changes: the deadline in milliseconds for reads and for
  // the callback's writes (Go's SetDeadline covers both), and the most one
  // poll may take (`pollRoom`).
  config: ManagerConfig
  deadline: number
  room: number
  // The framing this connection keeps for its life (setConfig changes it for
  // connections admitted later). Under the Go rule there is no framer.
  readonly framing: Framing.Framing
  framer: Framer.Framer | undefined = undefined
  // Why the input went bad, for the close's log; set by a fault or a decoder `make` that threw.
  framingFault: string | undefined = undefined
  // The frames of the last chunk not yet handed out (the framer's view, valid
  // until its next push, which happens only once they all are).
  frames: ReadonlyArray<Uint8Array> = noFrames
  nextFrame = 0
  // Messages handled, for maxMessagesPerConnection.
  handled = 0
  // Set while the fiber waits: resumes it.
  resume: ((resumed: Effect.Effect<unknown, unknown>) => void) | undefined = undefined
  // What the wait ended with, handed over beside the resumption rather than
  // inside it, so resuming allocates nothing.
  next: Next = "stopping"
  cancelWait: (() => void) | undefined = undefined
  // What a synchronous callback threw, handed to the fiber to fail with.
  thrown: unknown = undefined
  // The connection's span (the served record's, kept here), and message
  // spans: only with a connection span (a tracer is installed) and a sample
  // rate above 0; otherwise a message costs one test of `undefined`.
  readonly span: Tracer.Span | undefined
  messageSpan: Tracer.Span | undefined = undefined
  // The connection's state, from `withState`'s init (undefined without one).
  connectionState: unknown = undefined
  // Forks a message's effect with the context of the connection's fiber (its
  // services, the connection's span): set when the loop begins (`runNow`).
  fork: ((effect: Effect.Effect<unknown, unknown>) => Fiber.Fiber<unknown, unknown>) | undefined = undefined
  // When the current message's callback started (the clock's milliseconds).
  callbackStarted = 0
  // The clock reading that ended the last message, until the next reading it
  // stands in for takes it (the next message's start, or the wait's start):
  // both happen in the same synchronous run, so one read serves both. -1 when
  // taken: a field that only ever holds numbers stores them in place, where
  // `undefined` would make V8 box every reading in a new heap object.
  now = -1
  // Set once the connection is closing: a handler that runs after the close
  // (a close's own log failed) has nothing to add.
  closing = false
  // Set once the loop has ended, however it ended.
  ended = false

  // Bound once per connection: the transport calls them back, and the loop
  // below is built from them.
  readonly take: () => Next | undefined
  readonly onReady: (event: ReadyEvent) => void
  readonly dispatched: Effect.Effect<unknown, unknown>
  readonly loop: Effect.Effect<void>
  // The loop entered with `next` already set (the next buffered frame).
  readonly again: Effect.Effect<void>

  constructor(state: ManagerState, served: ServedConnection, connection: Connection) {
    this.state = state
    this.served = served
    this.span = served.span
    this.connection = connection
    this.transport = connection.transport
    this.writer = connection instanceof TransportConnection ? connection : asIs
    this.counters = state.counters
    const config = Ref.getUnsafe(state.config)
    this.config = config
    this.deadline = deadlineMillis(config)
    setDeadline(connection, this.deadline)
    this.room = pollRoom(config)
    this.framing = config.framing
    if (this.framing._tag !== "GoRule") {
      try {
        this.framer = Framer.make(this.framing, config.maxMessageBytes)
      } catch (error) {
        this.framingFault = `the decoder's make threw: ${error instanceof Error ? error.message : String(error)}`
      }
    }
    // Each closure is bound to a local before it is stored: V8 allocates a
    // function literal assigned straight to a property in the old generation,
    // where it would keep this session, and every object of its connection,
    // alive until the next full collection (BENCHMARKS.md, "Closures stored
    // on a property").
    const take = this.framing._tag === "GoRule" ? () => this.takeGo() : () => this.takeFrame()
    const onReady = (event: ReadyEvent) => this.ready(event)
    const wake = () => this.wakeForStop()
    this.take = take
    this.onReady = onReady
    // Set once, not per wait: `wakeForStop` does nothing unless a wait is pending.
    served.wake = wake
    // The loop is built once: `waitForNext` waits, then resumes with the
    // message's callback effect (or with `dispatched`, which runs a close),
    // and the handlers of `matchCauseEffect` decide whether to go round again.
    // A message costs no control-flow objects of its own, and resuming straight
    // into the callback's effect takes two steps of Effect's run loop fewer
    // than a `flatMap` after the wait.
    this.dispatched = Effect.suspend(() => this.dispatch())
    const handlers = {
      onFailure: (cause: Cause.Cause<unknown>) => this.callbackFailed(cause),
      // One parameter, so matchCauseEffect calls it as is instead of wrapping it.
      onSuccess: this.framing._tag === "GoRule" ? (_: unknown) => this.messageDone() : (_: unknown) => this.frameDone()
    }
    this.loop = Effect.matchCauseEffect(
      Effect.callback<unknown, unknown>((resume) => this.waitForNext(resume)),
      handlers
    )
    this.again = Effect.matchCauseEffect(this.dispatched, handlers)
  }

  // The loop, entered by the connection's fiber.
  begin(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void> {
    const fork = Effect.runForkWith(fiber.context)
    this.fork = fork
    return this.loop
  }

  // --- take: what the connection offers without waiting -------------------

  refresh(current: ManagerConfig): void {
    this.config = current
    this.deadline = deadlineMillis(current)
    setDeadline(this.connection, this.deadline)
    this.room = pollRoom(current)
    this.framer?.setMaxMessageBytes(current.maxMessageBytes)
  }

  // Under the Go rule: a message, a reason to close, or nothing yet. Bytes
  // already buffered come first, so bytes that arrived before a stop or a
  // peer close are still served.
  takeGo(): Next | undefined {
    const current = Ref.getUnsafe(this.state.config)
    if (current !== this.config) this.refresh(current)
    const first = this.transport.poll(this.room)
    if (first !== undefined) return frameGoMessage(this.transport, first, this.config, this.room) ?? "message too large"
    if (this.transport.ended) return "peer closed"
    if (this.state.lifecycle._tag === "Stopping") return "stopping"
    return undefined
  }

  // Under a framing: the next frame, one left from the last chunk, else the
  // first of the chunks buffered now. A chunk that completes several frames
  // corks the transport, so the replies to all of them leave in one write.
  // After the frames that came before bad input, the connection closes.
  takeFrame(): Next | undefined {
    if (this.nextFrame < this.frames.length) return this.frames[this.nextFrame++]!
    const current = Ref.getUnsafe(this.state.config)
    if (current !== this.config) this.refresh(current)
    const framer = this.framer
    if (framer === undefined) return "bad framing"
    while (framer.fault === undefined) {
      const chunk = this.transport.poll(this.room)
      if (chunk === undefined) break
      this.frames = framer.push(chunk)
      this.nextFrame = 0
      if (this.frames.length > 0) {
        if (this.frames.length > 1) this.transport.cork?.()
        this.nextFrame = 1
        return this.frames[0]!
      }
    }
    if (framer.fault !== undefined) {
      this.framingFault = framer.fault.detail
      return framer.fault.reason === "size" ? "frame too large" : "bad framing"
    }
    // A partial frame is dropped with the close (the peer's end, a stop).
    if (this.transport.ended) return "peer closed"
    if (this.state.lifecycle._tag === "Stopping") return "stopping"
    return undefined
  }

  // --- wait: for bytes, the deadline or a stop ----------------------------

  // The wait of each message, which resumes the fiber with the message, or
  // with why the connection ends: bytes, end of stream, deadline or stop.
  waitForNext(resume: (resumed: Effect.Effect<unknown, unknown>) => void): void {
    this.resume = resume
    // Bytes already buffered (pipelined frames, a chunk that came while the
    // callback ran) are served first.
    this.serveOrWait()
    // No canceller: the only interruption is a drain timeout cutting the
    // session short, after which the transport is aborted, which ends this
    // wait; a late resume of an interrupted fiber is ignored. Leaving it out
    // saves a finalizer per message.
  }

  // Ends the pending wait with `next`. A message is handed over as its
  // callback's effect, begun here; anything else, and a message once the loop
  // has ended, through `dispatched`, which runs only in a fiber that is still
  // running the loop: an interrupted fiber ignores a late resume, so a
  // connection cut by the drain timeout counts no close, and no message, it
  // did not serve.
  resumeWith(next: Next): void {
    if (typeof next === "string" || next === CALLBACK_THREW || this.ended) {
      this.next = next
      this.resumeWithEffect(this.dispatched)
    } else {
      this.resumeWithEffect(this.run(next))
    }
  }

  // Ends the pending wait: the fiber runs `effect`, then the loop's handlers.
  resumeWithEffect(effect: Effect.Effect<unknown, unknown>): void {
    const resume = this.resume!
    this.resume = undefined
    this.cancelWait = undefined
    resume(effect)
  }

  // The transport's event: bytes arrived, the peer ended, or the deadline passed.
  ready(event: ReadyEvent): void {
    if (this.resume === undefined) return
    if (event === "timeout") {
      this.resumeWith("deadline")
      return
    }
    this.serveOrWait()
  }

  // Serves the messages buffered now, while a wait is pending, as far as they
  // can be served without the fiber: a synchronous callback's, and an Effect
  // callback's whose effect completes at once (`runNow`). Ends the wait when
  // the fiber has more to do (what is left of an effect, a close); once
  // nothing more is buffered, the wait goes on for more bytes.
  serveOrWait(): void {
    const sync = this.state.sync
    while (true) {
      const next = this.take()
      if (next === undefined) break
      if (typeof next === "string" || this.ended) {
        this.resumeWith(next)
        return
      }
      if (sync === undefined) {
        const rest = this.runNow(this.run(next))
        if (rest !== undefined) {
          this.resumeWithEffect(rest)
          return
        }
      } else {
        this.beginMessage(next)
        try {
          sync(this.connection, next, next.length, this.connectionState)
        } catch (defect) {
          // Counted, timed and traced as any callback failure, by the fiber.
          this.thrown = defect
          this.resumeWith(CALLBACK_THREW)
          return
        }
      }
      if (this.endMessage()) {
        this.resumeWith("message limit")
        return
      }
    }
    this.cancelWait = this.transport.awaitReadable(this.deadline, this.onReady, this.takeNow())
  }

  // Runs an Effect callback's effect here, in the event. A success is done,
  // and a write of its connection's that the transport takes whole
  // (`TransportConnection.runNow`) is written, at no cost beyond the write.
  // Any other effect runs in a fiber of its own, forked here with the
  // connection fiber's context, as a server of requests runs each in its own
  // fiber: most complete at once, and that costs less than resuming the
  // connection's fiber, whose wait the next message then finds still pending
  // (BENCHMARKS.md, "Effects that complete at once"). Returns undefined once
  // the effect succeeded, else what is left for the connection's fiber: to
  // fail with a failure, or to wait for an effect that suspended (a write
  // waiting for the peer to read, a sleep, a call elsewhere), which keeps
  // the connection's later messages behind it. The wait of a write of the
  // connection's for the peer to read is the pool's own: the connection's
  // fiber waits itself, without a fiber to fork and join.
  runNow(effect: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> | undefined {
    const rest = this.writer.runNow(effect)
    if (rest === undefined) return undefined
    if (isExit(rest)) return Exit.isSuccess(rest) ? undefined : rest
    if (this.writer.isDrainWait(rest)) return rest
    const fiber = this.fork!(rest)
    const exit = fiber.pollUnsafe()
    if (exit === undefined) return joinInterrupting(fiber)
    return Exit.isSuccess(exit) ? undefined : exit
  }

  // The stop path (`served.wake`): ends a pending wait, else does nothing (a
  // busy session sees the stop when it next takes).
  wakeForStop(): void {
    if (this.resume === undefined) return
    this.cancelWait?.()
    this.resumeWith(this.take() ?? "stopping")
  }

  // --- dispatch: one message to the callback, counted, timed and traced ---

  // The bookkeeping of a message, the same for both kinds of callback.
  // Without tracing it leaves the served record alone: at 10,000 connections
  // that is one object fewer to fetch per message.
  beginMessage(message: Uint8Array): void {
    this.counters.messages++
    this.counters.bytesRead += message.length
    if (this.span !== undefined) this.traceMessage(message.length)
    this.callbackStarted = this.takeNow()
  }

  // The reading the last message ended with, once, else the clock's.
  takeNow(): number {
    const now = this.now
    if (now < 0) return clock.now()
    this.now = -1
    return now
  }

  // Counts the message for the connection's span, and samples a span of its own.
  traceMessage(length: number): void {
    this.served.messages++
    this.served.bytesRead += length
    const rate = this.config.messageSpanSampleRate
    if (rate === 0 || Math.random() >= rate) return
    this.messageSpan = Tracing.message(this.state.tracing!, this.span!, length)
  }

  endMessageSpan(exit: Exit.Exit<unknown, unknown>): void {
    this.state.tracing!.end(this.messageSpan!, exit)
    this.messageSpan = undefined
  }

  observeDuration(): void {
    const now = clock.now()
    this.now = now
    this.state.callbackDuration.observe((now - this.callbackStarted) / 1000)
  }

  // Records a message handled; true when the connection reached maxMessagesPerConnection.
  endMessage(): boolean {
    this.observeDuration()
    if (this.messageSpan !== undefined) this.endMessageSpan(Exit.void)
    this.handled++
    return this.config.maxMessagesPerConnection > 0 && this.handled >= this.config.maxMessagesPerConnection
  }

  // What the fiber runs once its wait ended with other than a message in the
  // event (`resumeWith`): a close, the failure of a synchronous callback that
  // threw in the event, or a frame already buffered (`frameDone`).
  dispatch(): Effect.Effect<unknown, unknown> {
    const next = this.next
    if (next === CALLBACK_THREW) return Effect.die(this.thrown) // its message was begun in `ready`
    if (typeof next === "string") {
      this.closing = true
      return this.close(next)
    }
    // Not kept past its callback: at 10,000 connections each one's last
    // message would otherwise live until the next, surviving scavenges.
    this.next = "stopping"
    return this.run(next)
  }

  // Begins `message` and returns its callback's effect.
  run(message: Uint8Array): Effect.Effect<unknown, unknown> {
    this.beginMessage(message)
    try {
      const effect = this.state.callback(
        this.connection,
        message,
        message.length,
        this.connectionState
      ) as Effect.Effect<unknown, unknown>
      // The callback's own spans nest under the message's. (Not with
      // `Effect.withParentSpan`, which captures a stack trace per call.)
      return this.messageSpan === undefined || this.state.sync !== undefined
        ? effect
        : Effect.provideService(effect, Tracer.ParentSpan, this.messageSpan)
    } catch (defect) {
      return Effect.die(defect)
    }
  }

  // After a message's callback, under the Go rule: wait for the next one.
  messageDone(): Effect.Effect<void> {
    if (this.closing) return Effect.void
    if (this.endMessage()) {
      this.closing = true
      return this.close("message limit")
    }
    return this.loop
  }

  // After a frame's callback: a frame already buffered is taken at once,
  // without the wait's callback, so a chunk's frames cost one resumption in all.
  frameDone(): Effect.Effect<void> {
    if (this.closing) return Effect.void
    if (this.endMessage()) {
      this.closing = true
      return this.close("message limit")
    }
    if (this.nextFrame < this.frames.length) {
      this.next = this.frames[this.nextFrame++]!
      return this.again
    }
    return this.loop
  }

  callbackFailed(cause: Cause.Cause<unknown>): Effect.Effect<void> {
    if (this.closing) return Effect.failCause(cause as Cause.Cause<never>) // a close's own log failed: nothing to add
    this.closing = true
    this.observeDuration()
    if (this.messageSpan !== undefined) this.endMessageSpan(Exit.failCause(cause))
    // The drain timeout's interruption never gets here (an interrupted fiber
    // skips these handlers): an interruption here is the callback's own (it
    // joined an interrupted fiber, say), a failure of the callback like any other.
    // A write that failed because the peer went away is the peer closing, not
    // the callback failing: no warning for every client that resets mid-reply.
    const error = Cause.findErrorOption(cause)
    if (error._tag === "Some" && isConnectionError(error.value)) {
      if (error.value.reason === "Timeout") return this.close("write timeout")
      if (this.transport.ended) return this.close("peer closed")
    }
    this.counters.callbackFailures++
    this.served.closeReason = "callback failed"
    this.transport.close()
    return Effect.logWarning("callback failed; closing its connection", cause).pipe(
      Effect.annotateLogs({ remoteAddress: this.transport.remoteAddress })
    )
  }

  // --- close --------------------------------------------------------------

  close(reason: CloseReason): Effect.Effect<void> {
    this.served.closeReason = reason
    count(this.counters, reason)
    // A peer that reads nothing cannot be sent the rest either: drop it at once.
    if (reason === "write timeout") this.transport.abort()
    else this.transport.close()
    // The peer's address only when logged: a runtime may build it on first use.
    if (reason === "message too large") {
      return Effect.logWarning("closing connection: message larger than maxMessageBytes").pipe(
        Effect.annotateLogs({
          remoteAddress: this.transport.remoteAddress,
          maxMessageBytes: this.config.maxMessageBytes
        })
      )
    }
    if (reason === "frame too large" || reason === "bad framing") {
      return Effect.logWarning(
        reason === "bad framing"
          ? "closing connection: bad input to its framing"
          : "closing connection: frame too large"
      ).pipe(
        Effect.annotateLogs({
          remoteAddress: this.transport.remoteAddress,
          reason: this.framingFault,
          framing: Framing.format(this.framing)
        })
      )
    }
    return this.config.debug
      ? Effect.logDebug("connection closed").pipe(
          Effect.annotateLogs({ remoteAddress: this.transport.remoteAddress, reason })
        )
      : Effect.void
  }
}
