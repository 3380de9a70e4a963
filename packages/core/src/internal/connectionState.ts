/**
 * Per-connection state (`PoolManager.withState`): the state's `init` runs in
 * the connection's fiber when a worker took the connection, in a Scope of the
 * connection's own that is closed (its finalizers run) when serving ends,
 * however it ends. An `init` that fails closes that connection only, counted
 * and logged as a callback failure.
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type { Connection } from "../Connection.ts"
import type { ManagerState, ServedConnection } from "./state.ts"

/** Runs `init`, hands its state to `serving` through `setState`, then serves. */
export const withState = (
  state: ManagerState,
  init: NonNullable<ManagerState["init"]>,
  served: ServedConnection,
  connection: Connection,
  setState: (value: unknown) => void,
  serving: Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.onExit(
      Effect.matchCauseEffect(
        Scope.provide(
          Effect.suspend(() => init(connection)),
          scope
        ),
        {
          onFailure: (cause) => {
            // The drain timeout's interruption never gets here (an interrupted
            // fiber skips these handlers): an interruption here is the init's
            // own, a failure like any other (as for a callback, in serve.ts).
            state.counters.callbackFailures++
            served.closeReason = "callback failed"
            connection.transport.close()
            return Effect.logWarning("connection state init failed; closing its connection", cause).pipe(
              Effect.annotateLogs({ remoteAddress: connection.remoteAddress })
            )
          },
          onSuccess: (value) => {
            setState(value)
            return serving
          }
        }
      ),
      (exit) => Scope.close(scope, exit)
    )
  )
