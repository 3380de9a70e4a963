/**
 * The pool server of `pool.ts` in two processes sharing the port with
 * `NodeCluster.runPrimary` (what `pool-manager --processes 2` does), in the
 * mode given as the first argument: `reuseport` (each worker binds the port,
 * the kernel spreads connections) or `handoff` (the primary accepts and
 * passes sockets over IPC). The primary prints `listening <port>` once both
 * listen; SIGTERM to the primary stops both, and each prints its
 * `accepted <n>` on stderr. On a 2-core machine the load client competes with
 * the two workers for the cores, so this row shows contention as much as
 * scaling.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeCluster from "@pool-manager/node/NodeCluster"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"

const mode = process.argv[2] === "handoff" ? "handoff" : "reuseport"

if (NodeCluster.workerNumber() === undefined) {
  const main = NodeCluster.runPrimary({
    processes: 2,
    mode,
    onListening: (address) =>
      Effect.sync(() => process.stdout.write(`listening ${typeof address === "string" ? -1 : address.port}\n`))
  }).pipe(Effect.scoped, Effect.provide(Logger.layer([])))
  NodeRuntime.runMain(main, {
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  })
} else {
  // Each worker runs the single-process server; only the primary says where it listens.
  process.stdout.write = () => true
  await import("./pool.ts")
}
