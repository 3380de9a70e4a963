/**
 * Benchmark server using this library: `NodeTcpServer` feeding a `PoolManager`
 * with no worker limits, whose callback answers `OK` to every non-empty message
 * (with `--echo`, the message itself) by returning its write, an effect the pool
 * runs at once (poolCallbacks.ts' `write`). With `--fiber`, the floor's own
 * callback instead (its `fiber`, `Effect.sync` around the write), which the pool
 * runs in a fiber of its own: the path of every callback that is more than one
 * write, measured against the floor doing the same.
 */
import { poolCallbacks } from "./poolCallbacks.ts"
import { echo, runPoolServer } from "./poolServer.ts"

const callbacks = poolCallbacks(echo)
runPoolServer(process.argv.includes("--fiber") ? callbacks.fiber : callbacks.write)
