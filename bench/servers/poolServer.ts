/**
 * What the pool benchmark servers share: `NodeTcpServer` on 127.0.0.1 (port 0)
 * feeding a `PoolManager` with no worker limits and the given callback. Prints
 * `listening <port>` once bound, exits on SIGTERM (NodeRuntime.runMain
 * interrupts the main fiber; releasing the layers closes the listener, then
 * stops the pool) after printing `accepted <n>` on stderr. In a worker of
 * `NodeCluster` (pool-cluster.ts) the listener follows the cluster's mode.
 *
 * `--trace=connection` installs a tracer, so the pool makes a `pool.connection`
 * span per connection (and `pool.put` spans); `--trace=message` also samples
 * every message (`messageSpanSampleRate: 1`). The tracer keeps Effect's own
 * span objects and drops them when they end: what is measured is the pool's
 * tracing, not an exporter's.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as NodeCluster from "@pool-manager/node/NodeCluster"
import * as NodeTcpServer from "@pool-manager/node/NodeTcpServer"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Tracer from "effect/Tracer"

/** `--echo`: answer each message with itself (the sweep's echo protocol). */
export const echo: boolean = process.argv.includes("--echo")

const trace = process.argv.find((arg) => arg.startsWith("--trace="))?.slice("--trace=".length)
const droppingTracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })

export const runPoolServer = (callback: PoolManager.Callback<unknown> | PoolManager.SyncCallback): void => {
  const Pool = PoolManager.layer(
    { maxWorkersCount: 0, minWorkersCount: 0, messageSpanSampleRate: trace === "message" ? 1 : 0 },
    callback
  ).pipe(trace === undefined ? (layer) => layer : Layer.provide(Layer.succeed(Tracer.Tracer, droppingTracer)))
  // In a worker of NodeCluster, the options the cluster's mode needs (elsewhere, these unchanged).
  const options = NodeCluster.serverOptions({ host: "127.0.0.1", port: 0, backlog: 4096 })
  const Server = NodeTcpServer.layer(options).pipe(Layer.provide(Pool))

  const main = Effect.gen(function* () {
    const server = yield* NodeTcpServer.NodeTcpServer
    const port = NetAddress.isInetAddress(server.address) ? server.address.port : -1
    process.stdout.write(`listening ${port}\n`)
    // The spread of a cluster's connections is read from these lines.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(server.connections, (accepted) =>
        Effect.sync(() => process.stderr.write(`accepted ${accepted}\n`))
      )
    )
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(Server))

  // runMain exits with 130 after an interruption (our SIGTERM); report that as a clean exit.
  NodeRuntime.runMain(main, {
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  })
}
