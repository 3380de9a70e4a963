#!/usr/bin/env node
/**
 * The `pool-manager` executable: the Go original's example TCP server with every
 * setting as a flag (`pool-manager --help`). Each message is answered `OK`,
 * or `ERROR` when it is empty; a client refused because the pool is busy gets
 * `ERROR_SERVER_BUSY` and is closed.
 *
 * Published as `dist/bin/pool-manager.js`; inside the repository Node runs this
 * file directly with `--conditions=@pool-manager/source`.
 */
import { createRequire } from "node:module"
import * as PoolManager from "@pool-manager/core/PoolManager"
import { run } from "@pool-manager/node/NodeCli"

// The version printed by `--version` is the installed package's own.
const { version } = createRequire(import.meta.url)("@pool-manager/node/package.json") as { version: string }

const OK = new TextEncoder().encode("OK")
const ERROR = new TextEncoder().encode("ERROR")

run({
  name: "pool-manager",
  version,
  description:
    "The Go original's example TCP server: answers OK to each message, ERROR_SERVER_BUSY when every worker is busy.",
  // The Go original's callback, on the synchronous fast path: the reply never has to
  // wait. A write can only fail once the client is gone, and then there is
  // nobody to tell, so the failure is dropped.
  callback: PoolManager.syncCallback((conn, _body, len) => {
    conn.transport.write(len > 0 ? OK : ERROR)
  })
})
