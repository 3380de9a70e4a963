/**
 * The Go original's example TCP server written the way the Go code is: create the
 * manager, start it, listen with `net`, and for every accepted connection
 * `Put` it into the pool, answering `ERROR_SERVER_BUSY` and closing it when
 * the pool refuses. This is the low-level API that `NodeTcpServer` (and the
 * `tcp-server.ts` example) wraps.
 *
 * Usage: `node --conditions=@pool-manager/source src/seed-style.ts [port]` (or `PORT=...`); the default is the
 * Go original's 6263, and 0 picks a free port. It prints
 * `seed-style listening on 127.0.0.1:<port>` once listening. SIGINT or SIGTERM
 * stop it: the listener closes, then the manager's scope closes, which drains
 * the pool. `NodeRuntime.runMain` then exits with 130, as for any interrupted
 * program (`NodeCli.runMain` would exit with 0).
 */

import * as Net from "node:net"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { type Connection, type PoolError, PoolManager } from "@pool-manager/core"
import { NodeConnection } from "@pool-manager/node"
import { Effect, References } from "effect"

const port = Number(process.argv[2] ?? process.env.PORT ?? 6263)

// func poolCallback(conn net.Conn, requestBody []byte, requestBodyLen int)
// (A write that fails because the client is gone closes its connection as the client's close.)
const poolCallback: PoolManager.Callback<PoolError.ConnectionError> = (conn, _requestBody, requestBodyLen) =>
  conn.write(requestBodyLen > 0 ? "OK" : "ERROR")

// net.Listen("tcp", "127.0.0.1:<port>"), closed when the program's scope closes.
// allowHalfOpen: a client that half-closes after its message still gets the
// reply, as with Go's net.Conn.
const listen = Effect.acquireRelease(
  Effect.callback<Net.Server, Error>((resume) => {
    const listener = Net.createServer({ allowHalfOpen: true })
    listener.once("error", (error) => resume(Effect.fail(error)))
    listener.listen({ host: "127.0.0.1", port }, () => resume(Effect.succeed(listener)))
  }),
  (listener) => Effect.sync(() => listener.close())
)

const main = Effect.gen(function* () {
  // poolManager := pool.CreateManager(pool.ManagerConfig{...}, poolCallback)
  const poolManager = yield* PoolManager.make(
    { debug: true, bufferSize: 5120, minWorkersCount: 5, maxWorkersCount: 10 },
    poolCallback
  )
  // poolManager.Start()
  yield* poolManager.start

  // listener, err := net.Listen(...); if err != nil { log.Fatal(err) }
  // (a failure here ends main, and runMain prints it and exits with 1)
  const listener = yield* listen
  const address = listener.address() as Net.AddressInfo
  yield* Effect.log(`seed-style listening on ${address.address}:${address.port}`)

  // errPut := poolManager.Put(conn); if errPut != nil { conn.Write(ERROR_SERVER_BUSY); conn.Close() }
  const accept = (conn: Connection.Connection) =>
    poolManager
      .put(conn)
      .pipe(Effect.catch(() => conn.write("ERROR_SERVER_BUSY").pipe(Effect.ignore, Effect.andThen(conn.close))))

  // for { conn, err := listener.Accept() ... }: Node calls us for each
  // connection; `put` runs on the Effect runtime with this program's context.
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  listener.on("connection", (socket) => runFork(accept(NodeConnection.make(socket))))

  return yield* Effect.never
}).pipe(
  Effect.scoped,
  // Debug: true logs at Debug level; show those logs as the Go example does.
  Effect.provideService(References.MinimumLogLevel, "Debug")
)

NodeRuntime.runMain(main)
