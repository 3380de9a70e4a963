/**
 * Errors accepting connections (`EMFILE`, `ENFILE`, `ENOBUFS`...): counted in
 * `pool_accept_errors_total{code}` and logged, rate-limited, with the limit
 * that was hit.
 *
 * Out of descriptors, libuv is silent: it closes a reserve descriptor,
 * accepts every waiting connection and closes it (the clients see a reset),
 * and reports nothing to Node. So the listener stops short of the limit:
 * its `maxConnections` is the descriptor limit (`ulimit -n`) less those open
 * when it started listening and a reserve (for the metrics port, files,
 * outgoing connections). A connection over it is accepted and closed at once
 * by Node, which says so (the `drop` event): that is counted as `EMFILE` and
 * logged, where the kernel's EMFILE would have gone unseen. Either way nothing
 * spins: each connection costs one accept and one close, and serving resumes
 * as soon as connections close. Other errors (`ENOBUFS`, `ENOMEM`, an
 * `ENFILE` libuv reports) come as the listener's `error` event.
 */
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as CountersBy from "./countersBy.ts"
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
const descriptorLimit = (): number | undefined => {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(Fs.readFileSync("/proc/self/limits", "utf8"))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

const openDescriptors = (): number | undefined => {
  try {
    return Fs.readdirSync("/proc/self/fd").length
  } catch {
    // Listing them needs a descriptor too.
    return undefined
  }
}

/** Descriptors kept for the rest of the process: 2% of the limit, at least 16. */
export const reserve = (limit: number): number => Math.max(16, Math.ceil(limit * 0.02))

/** Watches `listener`'s errors until the scope closes; returns the counts by code. */
export const watch = (
  listener: Net.Server,
  where: string
): Effect.Effect<() => Readonly<Record<Code, number>>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const counts = yield* CountersBy.make(
      "pool_accept_errors_total",
      "Errors accepting a connection (the connection is lost), by error code",
      "code",
      codes
    )
    const limit = descriptorLimit()
    const warn = yield* LogRateLimit.make({ kind: "accept errors" })
    const report = (code: Code, what: string) => {
      counts[code]++
      const fds = openDescriptors()
      const detail =
        code === "EMFILE" || code === "ENFILE"
          ? `: ${fds ?? "all"} descriptors open, limit ${limit ?? "unknown"} (ulimit -n; LimitNOFILE= in a systemd unit); the connection was closed`
          : ""
      warn(
        Effect.logWarning(`accepting on ${where}: ${what} (${meaning[code]})${detail}`).pipe(
          Effect.annotateLogs({ code, openFiles: fds ?? -1, maxOpenFiles: limit ?? -1 })
        )
      )
    }
    const onError = (error: NodeJS.ErrnoException) => {
      const code: Code = (codes as ReadonlyArray<string>).includes(error.code ?? "") ? (error.code as Code) : "other"
      report(code, error.code ?? error.message)
    }
    const onDrop = () => report("EMFILE", "EMFILE near the descriptor limit")
    listener.on("error", onError)
    const open = openDescriptors()
    const own = listener.maxConnections
    if (limit !== undefined && open !== undefined && (own === undefined || own === null || own === Infinity)) {
      listener.maxConnections = Math.max(1, limit - open - reserve(limit))
      listener.on("drop", onDrop)
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        listener.off("error", onError)
        listener.off("drop", onDrop)
      })
    )
    return () => ({ ...counts })
  })
