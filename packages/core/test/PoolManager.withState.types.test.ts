import { describe, expectTypeOf, it } from "@effect/vitest"
import { Effect } from "effect"
import { Framing, PoolManager } from "../src/index.ts"

describe("PoolManager.withState types", () => {
  it("infers the state for an Effect handler and a syncCallback, without annotations", () => {
    const effectful = PoolManager.withState(
      () => Effect.succeed({ db: 0 }),
      (conn, _body, _len, state) => {
        expectTypeOf(state).toEqualTypeOf<{ db: number }>()
        state.db++
        return Effect.orDie(conn.write("OK"))
      }
    )
    expectTypeOf(effectful).toEqualTypeOf<PoolManager.Stateful<{ db: number }, never, never>>()
    const sync = PoolManager.withState((conn) =>
      Effect.acquireRelease(Effect.succeed({ user: conn.remoteAddress }), () => Effect.void)
    )(
      PoolManager.syncCallback((conn, _body, _len, state) => {
        expectTypeOf(state).toEqualTypeOf<{ user: string }>()
        conn.writeNow(state.user)
      })
    )
    // The init's Scope is the connection's, not a requirement of the manager.
    expectTypeOf(sync).toEqualTypeOf<PoolManager.Stateful<{ user: string }, never, never>>()
    expectTypeOf(PoolManager.layer({ framing: Framing.lines() }, sync)).toEqualTypeOf<
      ReturnType<typeof PoolManager.layer<never, never>>
    >()
  })
})
