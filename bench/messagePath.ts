/**
 * The message path's JavaScript cost, without sockets: the pool (NodeConnection's
 * transport over a stand-in socket, the serve loop, an Effect callback writing
 * `OK`) against the floor (bench/servers/floorLoop.ts, the floor server's loop, over the same stand-in),
 * in one process, alternating. Each round delivers one chunk to each of
 * `--connections` connections, then lets the event loop turn once, as the
 * sockets' events would. Prints nanoseconds per message of each, per trial,
 * and the ratio: the part of a message's cost that is the pool's own code and
 * Effect's, with the kernel's and Node's stream work taken away.
 *
 * `node --conditions=@pool-manager/source bench/messagePath.ts [--connections N] [--messages N] [--trials N] [--sync | --fiber]`
 */
import { EventEmitter } from "node:events"
import type * as Net from "node:net"
import { parseArgs } from "node:util"
import * as PoolManager from "@pool-manager/core/PoolManager"
import * as NodeConnection from "@pool-manager/node/NodeConnection"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import { median } from "./harness.ts"
import { serveFloor } from "./servers/floorLoop.ts"
import { poolCallbacks } from "./servers/poolCallbacks.ts"

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "50" },
    messages: { type: "string", default: "2000" },
    trials: { type: "string", default: "7" },
    sync: { type: "boolean", default: false },
    fiber: { type: "boolean", default: false }
  }
})
const connections = Number(values.connections)
const messages = Number(values.messages)
const trials = Number(values.trials)

// What the transport and the floor use of a socket; writes are counted, not sent.
class FakeSocket extends EventEmitter {
  written = 0
  destroyed = false
  writableEnded = false
  writableNeedDrain = false
  readableEnded = false
  readableHighWaterMark = 65536
  writableLength = 0
  bytesWritten = 0
  remoteAddress = "127.0.0.1"
  remotePort = 1
  remoteFamily = "IPv4"
  setNoDelay() {
    return this
  }
  pause() {
    return this
  }
  resume() {
    return this
  }
  cork() {}
  uncork() {}
  write(_data: unknown) {
    this.written++
    return true
  }
  end() {
    this.writableEnded = true
    return this
  }
  destroy() {
    this.destroyed = true
    return this
  }
}

const chunk = Buffer.from("PING")
const callbacks = poolCallbacks(false)
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

const drive = async (sockets: ReadonlyArray<FakeSocket>): Promise<number> => {
  const start = process.hrtime.bigint()
  for (let m = 0; m < messages; m++) {
    for (const socket of sockets) socket.emit("data", chunk)
    await turn()
  }
  const nanos = Number(process.hrtime.bigint() - start)
  return nanos / (messages * sockets.length)
}

const floorSockets = Array.from({ length: connections }, () => {
  const socket = new FakeSocket()
  serveFloor(socket, false)
  return socket
})

const scope = Effect.runSync(Scope.make())
const manager = Effect.runSync(
  Scope.provide(
    PoolManager.make(
      { maxWorkersCount: 0, minWorkersCount: 0 },
      values.sync ? callbacks.sync : values.fiber ? callbacks.fiber : callbacks.write
    ),
    scope
  )
)
await Effect.runPromise(manager.start)
const poolSockets = Array.from({ length: connections }, () => new FakeSocket())
for (const socket of poolSockets) {
  await Effect.runPromise(manager.put(NodeConnection.make(socket as unknown as Net.Socket)))
}
await turn()

const results: Array<{ floor: number; pool: number }> = []
for (let t = 0; t < trials; t++) {
  const first = t % 2 === 0
  const a = await drive(first ? floorSockets : poolSockets)
  const b = await drive(first ? poolSockets : floorSockets)
  results.push(first ? { floor: a, pool: b } : { floor: b, pool: a })
}
const expected = messages * trials * connections
const poolWritten = poolSockets.reduce((n, s) => n + s.written, 0)
const floorWritten = floorSockets.reduce((n, s) => n + s.written, 0)
if (poolWritten !== expected || floorWritten !== expected) {
  throw new Error(`expected ${expected} replies each, got pool ${poolWritten}, floor ${floorWritten}`)
}
for (const [i, r] of results.entries()) {
  console.log(
    `trial ${i + 1}: floor ${r.floor.toFixed(0)} ns, pool ${r.pool.toFixed(0)} ns, pool - floor ${(r.pool - r.floor).toFixed(0)} ns`
  )
}
console.log(
  `median: floor ${median(results.map((r) => r.floor)).toFixed(0)} ns, pool ${median(results.map((r) => r.pool)).toFixed(0)} ns, ` +
    `difference ${median(results.map((r) => r.pool - r.floor)).toFixed(0)} ns per message`
)
await Effect.runPromise(Scope.close(scope, Effect.void as never))
process.exit(0)
