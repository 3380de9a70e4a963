/**
 * Benchmark server using this library: `NodeTcpServer` feeding a `PoolManager`
 * with no worker limits, whose callback answers `OK` to every non-empty message
 * (with `--echo`, the message itself).
 */
import * as Effect from "effect/Effect"
import { echo, runPoolServer } from "./poolServer.ts"

const OK = new TextEncoder().encode("OK")

runPoolServer(
  echo
    ? (conn, body, len) => (len > 0 ? conn.write(body.subarray(0, len)) : Effect.void)
    : (conn, _body, len) => (len > 0 ? conn.write(OK) : Effect.void)
)
