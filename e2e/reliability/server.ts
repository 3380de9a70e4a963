#!/usr/bin/env node
/**
 * The reliability suite's server: the Go original's OK/ERROR server built the way an
 * application builds it (`PoolManager.layer` + `NodeTcpServer.layer`, run by
 * `NodeCli.runMain`, so SIGINT/SIGTERM drain and exit 0), with a callback that
 * misbehaves on request and with its state printed as JSON lines.
 *
 * A message that is exactly one of these words makes the callback:
 * - `fail`: fail with an Error;
 * - `throw`: throw synchronously (before returning an Effect);
 * - `die`: die (a defect);
 * - `hang`: never return;
 * - `slow:<ms>`: sleep, then answer OK;
 * and any other message is answered `OK` (`ERROR` when empty), or echoed with
 * `--reply echo`.
 *
 * `--stats-interval <ms>` prints `stats {json}` lines (PoolStats, memory, open
 * fds) periodically; `final-stats {json}` is printed once the listener closed
 * and the pool drained. With `--gc` (and node's `--expose-gc`) garbage is
 * collected before each line, so `heapUsed` is the live heap.
 *
 *   node e2e/reliability/server.ts --port 0 --config '{"maxWorkersCount":10}' --stats-interval 1000
 */
import * as Fs from "node:fs"
import { parseArgs } from "node:util"
import { type ManagerConfig, PoolManager } from "@pool-manager/core"
import { NodeCli, NodeCliConfig, NodeTcpServer } from "@pool-manager/node"
import { Context, Duration, Effect, Layer, Schedule } from "effect"

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    config: { type: "string", default: "{}" },
    reply: { type: "string", default: "ok" },
    "stats-interval": { type: "string", default: "0" },
    gc: { type: "boolean", default: false }
  }
})

const config = JSON.parse(values.config) as ManagerConfig.Input
const echo = values.reply === "echo"
const statsInterval = Number(values["stats-interval"])
const collect = values.gc ? (globalThis as { gc?: () => void }).gc : undefined

const decoder = new TextDecoder()
const commandOf = (body: Uint8Array, len: number): string => (len <= 16 ? decoder.decode(body.subarray(0, len)) : "")

const callback: PoolManager.Callback<Error> = (conn, body, len) => {
  const command = commandOf(body, len)
  switch (command) {
    case "fail":
      return Effect.fail(new Error("reliability: the callback failed on purpose"))
    case "throw":
      throw new Error("reliability: the callback threw on purpose")
    case "die":
      return Effect.die(new Error("reliability: the callback died on purpose"))
    case "hang":
      return Effect.never
  }
  if (command.startsWith("slow:")) {
    return Effect.sleep(Duration.millis(Number(command.slice(5)))).pipe(Effect.andThen(Effect.ignore(conn.write("OK"))))
  }
  return Effect.ignore(conn.write(echo ? body.subarray(0, len) : len > 0 ? "OK" : "ERROR"))
}

const printStats = (label: string, manager: PoolManager.PoolManager["Service"]) =>
  Effect.flatMap(manager.stats, (stats) =>
    Effect.sync(() => {
      collect?.()
      const memory = process.memoryUsage()
      const line = {
        ...stats,
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        heapTotal: memory.heapTotal,
        external: memory.external,
        arrayBuffers: memory.arrayBuffers,
        fds: Fs.readdirSync("/proc/self/fd").length
      }
      process.stdout.write(`${label} ${JSON.stringify(line)}\n`)
    })
  )

const program = Effect.gen(function* () {
  let manager: PoolManager.PoolManager["Service"] | undefined
  // Registered first, so it runs last: after the listener closed and the pool drained.
  yield* Effect.addFinalizer(() => (manager === undefined ? Effect.void : printStats("final-stats", manager)))
  const context = yield* Layer.build(
    NodeTcpServer.layer({ host: values.host, port: Number(values.port) }).pipe(
      Layer.provideMerge(PoolManager.layer(config, callback))
    )
  )
  const started = Context.get(context, PoolManager.PoolManager)
  manager = started
  const server = Context.get(context, NodeTcpServer.NodeTcpServer)
  yield* Effect.log(NodeCliConfig.listeningLine("reliability-server", server.address, yield* started.config))
  if (statsInterval > 0) {
    yield* Effect.forkScoped(
      Effect.repeat(printStats("stats", started), Schedule.spaced(Duration.millis(statsInterval)))
    )
  }
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeCli.runMain(program)
