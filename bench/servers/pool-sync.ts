/**
 * Benchmark server using this library with a synchronous callback
 * (`PoolManager.syncCallback`, poolCallbacks.ts' `sync`): the `pool.ts` server,
 * answering `OK` to every non-empty message (with `--echo`, the message itself)
 * from the socket's event, without an effect.
 */
import { poolCallbacks } from "./poolCallbacks.ts"
import { echo, runPoolServer } from "./poolServer.ts"

runPoolServer(poolCallbacks(echo).sync)
