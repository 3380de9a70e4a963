/**
 * Bounded waits for the core tests. Under `TestClock` nothing happens while a
 * test waits unless a fiber can run now, so a wait that is not answered within
 * a few hundred scheduler turns never will be: `soon` fails it then, with an
 * assertion that says what was expected, instead of leaving it to the test's
 * 5 s timeout.
 */
import { assert } from "@effect/vitest"
import { Effect, type Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { MemoryConnection } from "../../src/index.ts"
import type { ConnectionError } from "../../src/PoolError.ts"
import { settle } from "./manager.ts"

/** How many scheduler turns `soon` lets pass (each also fires timers due at the current test time). */
export const turns = 200

const exhausted = (what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < turns; i++) {
      yield* TestClock.adjust(0)
      yield* Effect.yieldNow
    }
    return assert.fail(`expected ${what}, but nothing came within ${turns} scheduler turns`)
  })

/**
 * `effect`, failed with an assertion naming `what` if it has not completed
 * after `turns` scheduler turns at the current test time.
 */
export const soon = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> =>
  Effect.raceFirst(effect, exhausted(what))

/** The next bytes the server sends `client`, as text; an assertion failure if none come. */
export const nextReply = (client: MemoryConnection.MemoryClient): Effect.Effect<string, ConnectionError> =>
  soon(client.receiveText, "a reply from the server")

/**
 * The replies the server sends `client`, joined, until at least `length`
 * characters have come (replies may arrive in one write or in several).
 */
export const repliesOf = (
  client: MemoryConnection.MemoryClient,
  length: number
): Effect.Effect<string, ConnectionError> =>
  Effect.gen(function* () {
    let received = ""
    while (received.length < length) received += yield* nextReply(client)
    return received
  })

/** Waits until the server has closed `client`'s connection; an assertion failure if it does not. */
export const serverClosed = (client: MemoryConnection.MemoryClient): Effect.Effect<void> =>
  soon(client.closed, "the server to close the connection")

/** The exit of `fiber` once every fiber that can run did; fails the test if it still waits. */
export const outcome = <A, E>(fiber: Fiber.Fiber<A, E>, what: string) =>
  Effect.gen(function* () {
    yield* settle
    const exit = fiber.pollUnsafe()
    assert.isDefined(exit, `${what} still waits`)
    return exit!
  })
