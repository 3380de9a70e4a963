/**
 * Helpers shared by the core tests: an echoing callback that records what it
 * saw, memory clients, and a way to let forked fibers run under `TestClock`.
 */
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { type ManagerConfig, MemoryConnection, PoolManager } from "../../src/index.ts"

const decoder = new TextDecoder()

/** Received message bodies, as text, in order. */
export type Seen = Array<string>

/** A callback answering `OK:<body>` and recording each body. */
export const echo =
  (seen: Seen): PoolManager.Callback =>
  (conn, body, len) =>
    Effect.suspend(() => {
      seen.push(decoder.decode(body.subarray(0, len)))
      return conn.write(`OK:${decoder.decode(body)}`)
    }).pipe(Effect.orDie)

/** Lets every fiber that can run do so, without moving the test clock. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 10; i++) {
    yield* TestClock.adjust(0)
    yield* Effect.yieldNow
  }
})

/** A memory connection put into `manager`; fails the test if `put` fails. */
export const connect = (manager: PoolManager.PoolManager["Service"], options?: MemoryConnection.Options) =>
  Effect.gen(function* () {
    const { client, connection } = yield* MemoryConnection.make(options)
    yield* manager.put(connection)
    return client
  })

/** A started manager with `config` and the `echo` callback, stopped with the test's scope. */
export const started = (config: ManagerConfig.Input, seen: Seen = []) =>
  Effect.gen(function* () {
    const manager = yield* PoolManager.make(config, echo(seen))
    yield* manager.start
    return manager
  })
