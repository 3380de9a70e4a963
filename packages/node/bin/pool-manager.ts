#!/usr/bin/env node
/**
 * The `pool-manager` executable: the Go original's example TCP server with every
 * setting as a flag (`pool-manager --help`). Each message is answered `OK`,
 * or `ERROR` when it is empty; a client refused because the pool is busy gets
 * `ERROR_SERVER_BUSY` and is closed.
 *
 * It runs with V8's young generation capped at 16 MB a semi-space
 * (`--max-semi-space-size=16`): holding many connections, the server's
 * per-connection state survives scavenges, and V8 would otherwise grow the
 * young generation to 64 MB a semi-space (BENCHMARKS.md: RSS at 10,000
 * connections). A flag must be given before V8 starts, so when Node was not
 * started with it (on the command line or in `NODE_OPTIONS`) this program
 * replaces itself, before loading anything else, with the same command plus
 * the flag (`process.execve`: same process id, so signals and supervisors
 * see no difference). `node --max-semi-space-size=0` runs with V8's default
 * sizing instead; on Windows, which has no `execve`, it runs as started.
 *
 * Published as `dist/bin/pool-manager.js`; inside the repository Node runs this
 * file directly with `--conditions=@pool-manager/source`.
 */
import { createRequire } from "node:module"

const semiSpace = "--max-semi-space-size"
const nodeFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]
const given = nodeFlags.some((flag) => {
  const name = flag.replaceAll("_", "-")
  return name === semiSpace || name.startsWith(`${semiSpace}=`)
})
if (!given && process.execve !== undefined) {
  try {
    process.execve(process.execPath, [
      process.execPath,
      ...process.execArgv,
      `${semiSpace}=16`,
      ...process.argv.slice(1)
    ])
  } catch {
    // Not permitted here (a sandbox): serve as started, with V8's default sizing.
  }
}

// Loaded after the decision above, so a replaced process never loads them.
const PoolManager = await import("@pool-manager/core/PoolManager")
const { run } = await import("@pool-manager/node/NodeCli")

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
    conn.writeNow(len > 0 ? OK : ERROR)
  })
})
