/**
 * Benchmark server using this library: `NodeTcpServer` feeding a `PoolManager`
 * with no worker limits, whose callback answers `OK` to every non-empty message
 * (with `--echo`, the message itself).
 *
 * The callback returns its write as it is, an effect the pool runs at once in
 * the socket's event (BENCHMARKS.md, "Effects that complete at once"). With
 * `--fiber` it returns the floor's own callback instead, `Effect.sync` around
 * the write (`conn.writeNow`), which the pool runs in a fiber of its own, as
 * any effect that is not one of the connection's writes: the path of every
 * callback that is more than one write, measured against the floor doing the same.
 */
import * as Effect from "effect/Effect"
import { echo, runPoolServer } from "./poolServer.ts"

const OK = new TextEncoder().encode("OK")

runPoolServer(
  process.argv.includes("--fiber")
    ? (conn, body, len) =>
        Effect.sync(() => {
          if (len > 0) conn.writeNow(echo ? body.subarray(0, len) : OK)
        })
    : echo
      ? (conn, body, len) => (len > 0 ? conn.write(body.subarray(0, len)) : Effect.void)
      : (conn, _body, len) => (len > 0 ? conn.write(OK) : Effect.void)
)
