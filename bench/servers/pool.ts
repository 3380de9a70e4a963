/**
 * Benchmark server using this library: `NodeTcpServer` feeding a `PoolManager`
 * with no worker limits, whose callback answers `OK` to every non-empty message
 * (with `--echo`, the message itself).
 *
 * The callback returns its write as it is, an effect the pool runs at once in
 * the socket's event (BENCHMARKS.md, "Effects that complete at once"). With
 * `--gen` it is written as an `Effect.gen` program instead, which the pool
 * hands to the connection's fiber: the path of any callback that is more than
 * one write.
 */
import * as Effect from "effect/Effect"
import { echo, runPoolServer } from "./poolServer.ts"

const OK = new TextEncoder().encode("OK")

runPoolServer(
  process.argv.includes("--gen")
    ? (conn, body, len) =>
        Effect.gen(function* () {
          if (len > 0) yield* conn.write(echo ? body.subarray(0, len) : OK)
        })
    : echo
      ? (conn, body, len) => (len > 0 ? conn.write(body.subarray(0, len)) : Effect.void)
      : (conn, _body, len) => (len > 0 ? conn.write(OK) : Effect.void)
)
