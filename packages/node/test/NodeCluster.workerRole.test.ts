/**
 * A cluster process's role as it reads it from the environment the primary
 * forked it with (`NodeCluster.workerNumber`, `serverOptions`,
 * `lastGoodConfig`), in the test process: node:cluster's `isWorker` is set,
 * the variables the primary sets are set, and `process.send` is recorded,
 * all put back after each test. Which number it is, where and how it binds
 * in each mode, the announcement it sends once it listens, the config text
 * it starts with; what `auto` picks on each platform; and which of a
 * process's messages the primary takes for that announcement.
 */
import Cluster from "node:cluster"
import type * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { NodeCluster, type NodeTcpServer } from "../src/index.ts"
import * as ClusterWorker from "../src/internal/clusterWorker.ts"

const roleEnv = [ClusterWorker.processEnv, ClusterWorker.modeEnv, ClusterWorker.portEnv, ClusterWorker.configTextEnv]

/**
 * Runs `body` as a process of a cluster (`isWorker`), with the primary's
 * variables `env` (the others unset); what it sent the primary is given to
 * `body` (the test runner's own messages pass through).
 */
const asProcess = (
  env: Readonly<Record<string, string>>,
  body: (sent: ReadonlyArray<unknown>) => void,
  isWorker = true,
  channel = true
) => {
  const saved = { isWorker: Cluster.isWorker, send: process.send, env: roleEnv.map((name) => process.env[name]) }
  const sent: Array<unknown> = []
  try {
    ;(Cluster as { isWorker: boolean }).isWorker = isWorker
    for (const name of roleEnv) delete process.env[name]
    Object.assign(process.env, env)
    const record = ((message: unknown, ...rest: Array<unknown>) => {
      if (!ClusterWorker.isListeningMessage(message)) {
        return (saved.send as (...args: Array<unknown>) => boolean).call(process, message, ...rest)
      }
      sent.push(message)
      return true
    }) as NonNullable<typeof process.send>
    setSend(channel ? record : undefined)
    body(sent)
  } finally {
    ;(Cluster as { isWorker: boolean }).isWorker = saved.isWorker
    setSend(saved.send)
    roleEnv.forEach((name, i) => {
      const value = saved.env[i]
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    })
  }
}

const setSend = (send: typeof process.send) => {
  if (send === undefined) delete process.send
  else process.send = send
}

const address: Net.AddressInfo = { address: "127.0.0.1", family: "IPv4", port: 6263 }
const options: NodeTcpServer.Options = { host: "127.0.0.1", port: 7000 }

describe("NodeCluster worker role", () => {
  it("a process's number is the primary's POOL_MANAGER_PROCESS, in a forked process only", () => {
    for (const [value, expected] of [
      ["3", 3],
      ["12", 12],
      ["x3", undefined],
      ["3x", undefined],
      ["", undefined]
    ] as const) {
      asProcess({ [ClusterWorker.processEnv]: value }, () =>
        assert.strictEqual(NodeCluster.workerNumber(), expected, `POOL_MANAGER_PROCESS=${value}`)
      )
    }
    asProcess({}, () => assert.strictEqual(NodeCluster.workerNumber(), undefined))
    // The primary itself, or a program started with the variable set, is no process of a cluster.
    asProcess(
      { [ClusterWorker.processEnv]: "3" },
      () => assert.strictEqual(NodeCluster.workerNumber(), undefined),
      false
    )
  })

  it("reuseport: binds with reusePort on the port the primary gives, and announces itself once listening", () => {
    const heard: Array<unknown> = []
    const env = { [ClusterWorker.processEnv]: "2", [ClusterWorker.modeEnv]: "reuseport" }
    asProcess({ ...env, [ClusterWorker.portEnv]: "4321" }, (sent) => {
      const server = NodeCluster.serverOptions({ ...options, onListening: (at) => void heard.push(at) })
      assert.deepInclude(server, { host: "127.0.0.1", port: 4321, reusePort: true })
      server.onListening?.(address)
      assert.deepStrictEqual(sent, [{ type: ClusterWorker.listeningMessage, address }])
      assert.deepStrictEqual(heard, [address])
    })
    // The first process, before the port is known, binds the one it was given; so does one given no number.
    for (const port of [undefined, "x4321", "4321x"]) {
      asProcess({ ...env, ...(port === undefined ? {} : { [ClusterWorker.portEnv]: port }) }, (sent) => {
        const server = NodeCluster.serverOptions(options)
        assert.deepInclude(server, { port: 7000, reusePort: true }, `port ${port}`)
        // Without an onListening of its own, it still announces itself.
        assert.doesNotThrow(() => server.onListening?.(address))
        assert.deepStrictEqual(sent, [{ type: ClusterWorker.listeningMessage, address }])
      })
    }
    // A process started by hand with node:cluster's variable has no channel: nobody to tell.
    asProcess(
      env,
      () => assert.doesNotThrow(() => NodeCluster.serverOptions(options).onListening?.(address)),
      true,
      false
    )
    asProcess({ ...env, [ClusterWorker.portEnv]: "0" }, () => {
      assert.strictEqual(NodeCluster.serverOptions(options).port, 0)
    })
    // A path is never announced: the primary learns of a unix socket from node:cluster.
    asProcess({ ...env, [ClusterWorker.portEnv]: "4321" }, (sent) => {
      NodeCluster.serverOptions(options).onListening?.("/run/pool.sock")
      assert.deepStrictEqual(sent, [])
    })
  })

  it("elsewhere the options are the caller's: hand-off, a unix socket, the primary, a single process", () => {
    const reuseport = { [ClusterWorker.processEnv]: "1", [ClusterWorker.modeEnv]: "reuseport" }
    const cases: ReadonlyArray<readonly [string, Record<string, string>, NodeTcpServer.Options, boolean]> = [
      ["hand-off", { [ClusterWorker.processEnv]: "1", [ClusterWorker.modeEnv]: "handoff" }, options, true],
      ["a unix socket", reuseport, { path: "/run/pool.sock" }, true],
      ["the primary", reuseport, options, false],
      ["a single process", {}, options, true]
    ]
    for (const [what, env, given, isWorker] of cases) {
      asProcess(
        { ...env, [ClusterWorker.portEnv]: "4321" },
        () => assert.strictEqual(NodeCluster.serverOptions(given), given, what),
        isWorker
      )
    }
  })

  it("a process starts with the config text the primary gives it; nothing else does", () => {
    const env = { [ClusterWorker.configTextEnv]: "max-workers: 4\n" }
    asProcess({ ...env, [ClusterWorker.processEnv]: "1" }, () =>
      assert.strictEqual(NodeCluster.lastGoodConfig(), "max-workers: 4\n")
    )
    asProcess(env, () => assert.strictEqual(NodeCluster.lastGoodConfig(), undefined))
    asProcess(
      { ...env, [ClusterWorker.processEnv]: "1" },
      () => assert.strictEqual(NodeCluster.lastGoodConfig(), undefined),
      false
    )
  })

  it("auto is reuseport on Linux, hand-off elsewhere", () => {
    const platform = Object.getOwnPropertyDescriptor(process, "platform")!
    try {
      for (const [name, mode] of [
        ["linux", "reuseport"],
        ["darwin", "handoff"],
        ["win32", "handoff"]
      ] as const) {
        Object.defineProperty(process, "platform", { ...platform, value: name })
        assert.strictEqual(NodeCluster.defaultMode(), mode, name)
      }
    } finally {
      Object.defineProperty(process, "platform", platform)
    }
  })

  it("the primary takes only the announcement for one: no other message, of any shape", () => {
    assert.isTrue(ClusterWorker.isListeningMessage({ type: ClusterWorker.listeningMessage, address }))
    for (const message of [undefined, null, 7, "pool-manager:listening", { type: "other", address }, {}]) {
      let taken: boolean | string
      try {
        taken = ClusterWorker.isListeningMessage(message)
      } catch (error) {
        taken = `threw ${String(error)}`
      }
      assert.strictEqual(taken, false, String(JSON.stringify(message)))
    }
  })
})
