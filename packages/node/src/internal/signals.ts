/**
 * Every signal the server handles, in one place: the process's SIGINT,
 * SIGTERM and SIGHUP listeners are installed here and nowhere else, and the
 * rest of the package subscribes to them.
 *
 * - SIGINT and SIGTERM: the first one interrupts the main fiber (`runMain`)
 *   and is remembered as the signal that started the stop (`stopSignal`, for
 *   the "stopping" line); every one, the first included, also reaches the
 *   subscribers (the lame-duck period ends on the next one, the cluster's
 *   primary passes them on to its processes).
 * - SIGHUP never terminates the process: once `runMain` runs, a listener is
 *   always installed. Subscribers reload what they own (the config file, the
 *   TLS files, a cluster's processes); with none, the signal is logged as
 *   having nothing to reload. Node's default for SIGHUP is to exit, which is
 *   what systemd's `ExecReload=kill -HUP` would otherwise do to the service.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

export type StopSignal = "SIGINT" | "SIGTERM"
export type Signal = StopSignal | "SIGHUP"

// Module state on purpose, unlike the rest of the package: a signal is
// delivered to the process, and Node keeps one listener table per process,
// so this mirrors it (one dispatcher per signal, `stop` the process's first
// stop signal). What a scope owns is its subscription: `on` and `onSighup`
// end with their scope, `runMain` holds SIGHUP for its program's life, and a
// process listener exists only while one of them needs it.
const handlers: Record<Signal, Set<(signal: Signal) => void>> = {
  SIGINT: new Set(),
  SIGTERM: new Set(),
  SIGHUP: new Set()
}
const installed = new Map<Signal, () => void>()
// SIGHUP is held (a listener kept installed) while runMain runs, even without subscribers.
let holdSighup = 0
let stop: { readonly signal: StopSignal; readonly at: number } | undefined

const dispatch = (signal: Signal) => () => {
  if ((signal === "SIGINT" || signal === "SIGTERM") && stop === undefined) stop = { signal, at: Date.now() }
  if (signal === "SIGHUP" && handlers.SIGHUP.size === 0) {
    Effect.runFork(Effect.logInfo("SIGHUP: nothing to reload (no --config, no TLS files)"))
    return
  }
  for (const handler of Array.from(handlers[signal])) handler(signal)
}

// A process listener exists exactly while somebody needs it, so a library
// user's own handlers and Node's defaults apply otherwise.
const sync = (signal: Signal) => {
  const needed = handlers[signal].size > 0 || (signal === "SIGHUP" && holdSighup > 0)
  const listener = installed.get(signal)
  if (needed && listener === undefined) {
    const next = dispatch(signal)
    installed.set(signal, next)
    process.on(signal, next)
  } else if (!needed && listener !== undefined) {
    installed.delete(signal)
    process.off(signal, listener)
  }
}

/** Calls `handler` on each `signal` until the returned function is called. */
export const subscribe = (signal: Signal, handler: (signal: Signal) => void): (() => void) => {
  const own = (received: Signal) => handler(received)
  handlers[signal].add(own)
  sync(signal)
  return () => {
    handlers[signal].delete(own)
    sync(signal)
  }
}

/** `subscribe` to each of `signals` until the scope closes. */
export const on = (
  signals: Signal | ReadonlyArray<Signal>,
  handler: (signal: Signal) => void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => (typeof signals === "string" ? [signals] : signals).map((signal) => subscribe(signal, handler))),
    (unsubscribes) =>
      Effect.sync(() => {
        for (const unsubscribe of unsubscribes) unsubscribe()
      })
  ).pipe(Effect.asVoid)

/** Runs `effect` (in the caller's context) on each SIGHUP until the scope closes. */
export const onSighup = <R>(effect: Effect.Effect<void, never, R>): Effect.Effect<void, never, R | Scope.Scope> =>
  Effect.flatMap(Effect.context<R>(), (context) =>
    on("SIGHUP", () => {
      Effect.runForkWith(context)(effect)
    })
  )

/** The SIGINT or SIGTERM that started the stop, and when (`Date.now()`); `undefined` before one arrived. */
export const stopSignal = (): { readonly signal: StopSignal; readonly at: number } | undefined => stop

/** Waits for the next SIGINT or SIGTERM, at most `millis`. */
export const nextStopSignal = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const done = () => {
      clearTimeout(timer)
      unsubscribe()
      resume(Effect.void)
    }
    const timer = setTimeout(done, millis)
    const unsubscribes = [subscribe("SIGINT", done), subscribe("SIGTERM", done)]
    const unsubscribe = () => {
      for (const each of unsubscribes) each()
    }
    return Effect.sync(() => {
      clearTimeout(timer)
      unsubscribe()
    })
  })

/**
 * Runs `effect` as the main program: the first SIGINT or SIGTERM interrupts
 * it, and a program so interrupted (and by nothing else) exits with
 * `process.exitCode` or 0 rather than 130. SIGHUP is held from the start.
 */
export const runMain: <A, E>(effect: Effect.Effect<A, E>) => void = (effect) =>
  Runtime.makeRunMain(({ fiber, teardown }) => {
    holdSighup++
    sync("SIGHUP")
    const unsubscribes = (["SIGINT", "SIGTERM"] as const).map((signal) =>
      subscribe(signal, () => fiber.interruptUnsafe(fiber.id))
    )
    fiber.addObserver((exit) => {
      for (const unsubscribe of unsubscribes) unsubscribe()
      holdSighup--
      sync("SIGHUP")
      teardown(exit, (code) => {
        if (stop !== undefined || code !== 0) process.exit(code)
      })
    })
  })(effect, {
    teardown: (exit, onExit) => {
      if (stop !== undefined && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) {
        return onExit(Number(process.exitCode ?? 0) || 0)
      }
      Runtime.defaultTeardown(exit, onExit)
    }
  })
