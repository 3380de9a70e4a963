/**
 * Errors accepting connections (`EMFILE`, `ENFILE`, `ENOBUFS`...): counted in
 * `pool_accept_errors_total{code}` and logged, rate-limited, with the limit
 * that was hit. Node reports such an error on the listener and keeps
 * accepting; libuv does not spin on it: when out of descriptors it closes its
 * reserve descriptor, accepts the waiting connection and closes it (the
 * client sees a reset), then waits for the next one. What frees descriptors
 * (connections closing) ends the exhaustion by itself.
 */
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as LogRateLimit from "./logRateLimit.ts"

/** The codes with their own series; anything else is counted as `other`. */
export const codes = ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "other"] as const
export type Code = (typeof codes)[number]

const meaning: Record<Code, string> = {
  EMFILE: "this process is out of file descriptors",
  ENFILE: "the system is out of file descriptors",
  ENOBUFS: "the kernel is out of socket buffers",
  ENOMEM: "the kernel is out of memory",
  other: "accept failed"
}

// The soft limit of open files (`ulimit -n`), read at start: at the limit, reading it would fail.
const descriptorLimit = (): string => {
  try {
    const match = /^Max open files\s+(\S+)/m.exec(Fs.readFileSync("/proc/self/limits", "utf8"))
    return match?.[1] ?? "unknown"
  } catch {
    return "unknown"
  }
}

const openDescriptors = (): string => {
  try {
    return String(Fs.readdirSync("/proc/self/fd").length)
  } catch {
    // Listing them needs a descriptor too.
    return "all"
  }
}

/** Watches `listener`'s errors until the scope closes; returns the counts by code. */
export const watch = (
  listener: Net.Server,
  where: string
): Effect.Effect<() => Readonly<Record<Code, number>>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const counts = Object.fromEntries(codes.map((code) => [code, 0])) as Record<Code, number>
    const context = yield* Effect.context<never>()
    const registrations = codes.map((code) =>
      Metric.registerUnsafe(
        Metric.counter("pool_accept_errors_total", {
          description: "Errors accepting a connection (the connection is lost), by error code",
          attributes: { code }
        }),
        context,
        { get: () => ({ count: counts[code], incremental: true }), update: () => {}, modify: () => {} }
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const registration of registrations) registration.remove()
      })
    )
    const limit = descriptorLimit()
    const warn = yield* LogRateLimit.make({ kind: "accept errors" })
    const onError = (error: NodeJS.ErrnoException) => {
      const code: Code = (codes as ReadonlyArray<string>).includes(error.code ?? "") ? (error.code as Code) : "other"
      counts[code]++
      const fds = code === "EMFILE" || code === "ENFILE" ? openDescriptors() : undefined
      const detail =
        fds === undefined
          ? ""
          : `: ${fds} descriptors open, limit ${limit} (ulimit -n; LimitNOFILE= in a systemd unit); the connection was closed`
      warn(
        Effect.logWarning(`accepting on ${where}: ${error.code ?? error.message} (${meaning[code]})${detail}`).pipe(
          Effect.annotateLogs({ code: error.code ?? "unknown", openFiles: fds ?? "", maxOpenFiles: limit })
        )
      )
    }
    listener.on("error", onError)
    yield* Effect.addFinalizer(() => Effect.sync(() => listener.off("error", onError)))
    return () => ({ ...counts })
  })
