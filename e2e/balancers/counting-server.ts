#!/usr/bin/env node
/**
 * `pool-manager` (the same command, flags and OK/ERROR callback) that also
 * counts the messages its callback handled and prints `handled N` when the
 * process exits: the tests compare it with the replies clients received.
 */
import * as PoolManager from "@pool-manager/core/PoolManager"
import { run } from "@pool-manager/node/NodeCli"

const OK = new TextEncoder().encode("OK")
const ERROR = new TextEncoder().encode("ERROR")
let handled = 0

// Writes to a pipe are synchronous on Linux, so the line is out before the process is.
process.on("exit", () => process.stdout.write(`handled ${handled}\n`))

run({
  name: "pool-manager",
  callback: PoolManager.syncCallback((conn, _body, len) => {
    handled++
    conn.transport.write(len > 0 ? OK : ERROR)
  })
})
