/**
 * A program written as a user of the published packages would write it,
 * touching every public family of `@pool-manager/core` and
 * `@pool-manager/node`. `.ci/consumer/run` type-checks it against the
 * installed tarballs (TypeScript 5 and 7, `nodenext` and `bundler`
 * resolution), bundles it with esbuild and runs the bundle: it exits 0 only
 * when every check below held.
 */
import * as Net from "node:net"
import { type Connection, ManagerConfig, MemoryConnection, type PoolError, PoolManager } from "@pool-manager/core"
import { NodeCli, NodeConnection, NodeTcpServer } from "@pool-manager/node"
import { Effect, Layer } from "effect"

const check = (what: string, ok: boolean): Effect.Effect<void, Error> =>
  ok ? Effect.log(`ok: ${what}`) : Effect.fail(new Error(`failed: ${what}`))

/** Sends `message` to a TCP server and resolves with everything it answered until it closed or went quiet. */
const request = (port: number, message: string): Effect.Effect<string, Error> =>
  Effect.callback<string, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let answer = ""
    const timer = setTimeout(() => socket.end(), 300)
    socket.on("connect", () => socket.write(message))
    socket.on("data", (chunk) => {
      answer += chunk.toString()
      timer.refresh()
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed(answer))
    })
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("10 seconds"))

const okCallback: PoolManager.Callback = (conn, _body, len) => Effect.ignore(conn.write(len > 0 ? "OK" : "ERROR"))

// PoolManager.make, MemoryConnection.make (a Connection.Connection) and PoolError tags through Effect.catchTag.
const inMemory = Effect.gen(function* () {
  const manager = yield* PoolManager.make({ maxWorkersCount: 1 }, okCallback)
  yield* manager.start
  const first = yield* MemoryConnection.make()
  const connection: Connection.Connection = first.connection
  yield* manager.put(connection)
  yield* first.client.send("HI!")
  yield* check("an in-memory connection is answered OK", (yield* first.client.receiveText) === "OK")
  const second = yield* MemoryConnection.make()
  const refused = yield* manager.put(second.connection).pipe(
    Effect.as("admitted"),
    Effect.catchTag("PoolBusyError", (error: PoolError.PoolBusyError) => Effect.succeed(error._tag))
  )
  yield* check("a put beyond maxWorkersCount fails with PoolBusyError", refused === "PoolBusyError")
  const again = yield* manager.start.pipe(
    Effect.as("started twice"),
    Effect.catchTag("AlreadyRunningError", (error) => Effect.succeed(error._tag))
  )
  yield* check("start while running fails with AlreadyRunningError", again === "AlreadyRunningError")
  yield* manager.stop
}).pipe(Effect.scoped)

// ManagerConfig: defaults and a ConfigError naming the field.
const config = Effect.gen(function* () {
  const made: ManagerConfig.ManagerConfig = yield* ManagerConfig.make({ minWorkersCount: 2 })
  yield* check("ManagerConfig.make keeps the Go original's bufferSize default", made.bufferSize === 5120)
  const message = yield* ManagerConfig.make({ minWorkersCount: -1 }).pipe(
    Effect.as(""),
    Effect.catchTag("ConfigError", (error) => Effect.succeed(error.message))
  )
  yield* check("an invalid config fails with ConfigError naming the field", message.includes("minWorkersCount"))
})

// PoolManager.layer with a syncCallback, served by NodeTcpServer.layer on a free port.
const tcpServer = Effect.gen(function* () {
  const server = yield* NodeTcpServer.NodeTcpServer
  const port = "port" in server.address ? server.address.port : 0
  yield* check("NodeTcpServer answers OK over TCP", (yield* request(port, "HI!")) === "OK")
}).pipe(
  Effect.provide(
    NodeTcpServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
      Layer.provide(
        PoolManager.layer(
          { minWorkersCount: 1, maxWorkersCount: 4 },
          PoolManager.syncCallback((conn, _body, len) => {
            conn.transport.write(len > 0 ? "OK" : "ERROR")
          })
        )
      )
    )
  )
)

// NodeConnection.make on a socket from the application's own net.Server.
const ownListener = Effect.gen(function* () {
  const manager = yield* PoolManager.PoolManager
  const listener = Net.createServer((socket) => {
    Effect.runFork(
      manager
        .put(NodeConnection.make(socket))
        .pipe(Effect.catch(() => Effect.sync(() => socket.end("ERROR_SERVER_BUSY"))))
    )
  })
  yield* Effect.acquireRelease(
    Effect.callback<void>((resume) => {
      listener.listen(0, "127.0.0.1", () => resume(Effect.void))
    }),
    () => Effect.sync(() => listener.close())
  )
  const address = listener.address() as Net.AddressInfo
  yield* check("NodeConnection.make serves a socket of the app's own", (yield* request(address.port, "HI!")) === "OK")
}).pipe(Effect.scoped, Effect.provide(PoolManager.layer({}, okCallback)))

// NodeCli: the server as a command, built but not run.
const cli = Effect.sync(() => NodeCli.command({ name: "consumer", callback: okCallback })).pipe(
  Effect.flatMap((command) => check("NodeCli.command builds a command", command !== undefined))
)

const program = Effect.gen(function* () {
  yield* inMemory
  yield* config
  yield* tcpServer
  yield* ownListener
  yield* cli
  yield* Effect.log("consumer: every check passed")
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
