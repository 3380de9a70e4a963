/**
 * The pool benchmark servers' callbacks, one per way a callback reaches its
 * connection, shared by the servers (pool.ts, pool-sync.ts) and the
 * socket-less measurement of the same path (bench/messagePath.ts), so that
 * both measure the same code. Each answers `OK` to every non-empty message
 * (with `echo`, the message itself):
 *
 * - `write` returns the write as it is, an effect the pool runs at once in
 *   the socket's event (BENCHMARKS.md, "Effects that complete at once");
 * - `fiber` is the floor's own callback, `Effect.sync` around the write
 *   (`conn.writeNow`), which the pool runs in a fiber of its own, as any
 *   effect that is not one of the connection's writes: the path of every
 *   callback that is more than one write;
 * - `sync` is a `PoolManager.syncCallback`, run in the socket's event with no effect at all.
 */
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as Effect from "effect/Effect"

const OK = new TextEncoder().encode("OK")

export const poolCallbacks = (echo: boolean) => {
  // Chosen once, so each server calls one function (which V8 inlines) per message.
  const reply = echo ? (body: Uint8Array, len: number) => body.subarray(0, len) : () => OK
  const write: PoolManager.Callback<unknown> = (conn, body, len) =>
    len > 0 ? conn.write(reply(body, len)) : Effect.void
  const fiber: PoolManager.Callback<unknown> = (conn, body, len) =>
    Effect.sync(() => {
      if (len > 0) conn.writeNow(reply(body, len))
    })
  const sync = PoolManager.syncCallback((conn, body, len) => {
    if (len > 0) conn.writeNow(reply(body, len))
  })
  return { write, fiber, sync }
}
