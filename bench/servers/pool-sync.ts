/**
 * Benchmark server using this library with a synchronous callback
 * (`PoolManager.syncCallback`): the `pool.ts` server, answering `OK` to every
 * non-empty message (with `--echo`, the message itself) from the socket's
 * event, without resuming the session's fiber.
 */
import * as PoolManager from "@pool-manager/core/PoolManager"
import { echo, runPoolServer } from "./poolServer.ts"

const OK = new TextEncoder().encode("OK")

runPoolServer(
  PoolManager.syncCallback(
    echo
      ? (conn, body, len) => {
          if (len > 0) conn.writeNow(body.subarray(0, len))
        }
      : (conn, _body, len) => {
          if (len > 0) conn.writeNow(OK)
        }
  )
)
