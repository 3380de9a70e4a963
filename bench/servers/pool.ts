/**
 * Benchmark server using this library: `NodeTcpServer` feeding a `PoolManager`
 * with no worker limits, whose callback answers `OK` to every non-empty message.
 */
import * as Effect from "effect/Effect"
import { runPoolServer } from "./poolServer.ts"

const OK = new TextEncoder().encode("OK")

runPoolServer((conn, _body, len) => (len > 0 ? conn.write(OK) : Effect.void))
