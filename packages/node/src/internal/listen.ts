/**
 * Listening with a `net.Server` (or a `tls.Server`) as a scoped effect: what
 * `NodeTcpServer` and `NodeAgentCheck` share. It fails with Node's error when
 * the server cannot listen, and closes the server when the scope closes.
 */
import type * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * Listens with `server` on `options`; `onListening` runs once it is bound,
 * before the effect succeeds.
 */
export const listen = <S extends Net.Server>(
  server: S,
  options: Net.ListenOptions,
  onListening?: (server: S) => void
): Effect.Effect<S, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<S, Error>((resume) => {
      const onError = (cause: Error) => resume(Effect.fail(cause))
      server.once("error", onError)
      server.listen(options, () => {
        server.off("error", onError)
        onListening?.(server)
        // After listening, an error (e.g. EMFILE on accept) must not crash
        // the process: Node retries accepting by itself.
        server.on("error", () => {})
        resume(Effect.succeed(server))
      })
    }),
    (server) => Effect.sync(() => server.close())
  )
