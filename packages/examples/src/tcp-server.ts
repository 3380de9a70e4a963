/**
 * The Go original's "Example TCP Server implementation": a pool of 5 to 10 workers
 * with a 5120-byte buffer and debug logging, listening on 127.0.0.1:6263,
 * answering `OK` to every message (`ERROR` to an empty one). A client that
 * arrives while all 10 workers are busy gets `ERROR_SERVER_BUSY` and is
 * closed.
 *
 * Unlike the Go example it is a full command line program: the Go original's values
 * are the defaults of `NodeCli`'s flags, so `npm start -- --port 0
 * --max-workers 3` (or `node --conditions=@pool-manager/source src/tcp-server.ts --help`) works, and SIGINT or
 * SIGTERM stop it gracefully with exit code 0. `seed-style.ts` shows the same
 * server written line by line like the Go code.
 *
 * Importing this module does not start the server, so tests can call
 * `poolCallback` directly.
 */
import type { PoolError, PoolManager } from "@pool-manager/core"
import { NodeCli, type NodeCliConfig } from "@pool-manager/node"

/**
 * The Go original's `poolCallback`: `OK` when the message has bytes, else `ERROR`.
 * The write is returned as it is, which the pool runs at once in the socket's
 * event (no fiber resumption per message). A write that fails because the
 * client is gone closes the connection as the client's close, with nobody to
 * tell and no warning: nothing to ignore here.
 *
 * @since 0.1.0
 */
export const poolCallback: PoolManager.Callback<PoolError.ConnectionError> = (conn, _requestBody, requestBodyLen) =>
  conn.write(requestBodyLen > 0 ? "OK" : "ERROR")

/**
 * The Go original's `pool.ManagerConfig{...}` and `net.Listen("tcp", "127.0.0.1:6263")`,
 * as the defaults of the flags. `debug: true` also makes `NodeCli` show Debug
 * logs, so the pool's events are visible as they are in the Go example.
 *
 * @since 0.1.0
 */
export const defaults: NodeCliConfig.Defaults = {
  debug: true,
  bufferSize: 5120,
  minWorkersCount: 5,
  maxWorkersCount: 10,
  host: "127.0.0.1",
  port: 6263
}

if (import.meta.main) {
  NodeCli.run({
    name: "tcp-server",
    description:
      "The Go original's example TCP server: answers OK to each message, ERROR_SERVER_BUSY when every worker is busy.",
    callback: poolCallback,
    defaults
  })
}
