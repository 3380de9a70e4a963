/**
 * How a `NodeTcpServer` listens, as seen from outside it: `onListening` and
 * the service's `address` (the real port for port 0, the path of a unix
 * socket), the listen options the kernel's socket got (`backlog` as `ss`
 * shows it, `reusePort` as another socket can share the port), the name logs
 * give the server (its bound address: the port it really got, `unix:` and
 * the path), and `ListenError`: its `address`, and its message's hint for a
 * port in use, a permission refused, a unix socket's missing folder (which
 * libuv reports as a permission refused) or path in use, or neither; a TLS key that does not match its certificate
 * refuses the listen.
 */
import { execFileSync } from "node:child_process"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Effect, Layer, Metric } from "effect"
import { NodeTcpServer } from "../src/index.ts"
import { certificate, tempDir } from "./utils/certificate.ts"
import { portOf } from "./utils/client.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { until } from "./utils/socketPair.ts"

const Pool = PoolManager.layer({ maxWorkersCount: 2 }, (conn) => Effect.ignore(conn.write("OK")))

/** A server in the test's scope, over a pool of its own built there first (so released after it). */
const serve = (options: NodeTcpServer.Options) =>
  Effect.gen(function* () {
    const pool = yield* Effect.orDie(Layer.build(Pool))
    return yield* NodeTcpServer.make(options).pipe(Effect.provideContext(pool))
  })

/** Binds a plain listener to `port` with `reusePort`: whether the kernel let it share the port. */
const canShare = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const other = Net.createServer()
    other.once("error", () => resume(Effect.succeed(false)))
    other.listen({ host: "127.0.0.1", port, reusePort: true }, () => other.close(() => resume(Effect.succeed(true))))
  })

/** The accept queue's length the kernel gives the socket listening on `port` (`ss`'s Send-Q of a listener). */
const backlogOf = (port: number): number => {
  const line = execFileSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" }).trim()
  const fields = line.split(/\s+/)
  assert.strictEqual(fields[0], "LISTEN", `ss shows one listener on ${port}: ${line}`)
  return Number(fields[2])
}

/** Sends `junk` (not a TLS hello) to `target` and closes. */
const notTls = (target: number | string) =>
  Effect.sync(() => {
    const socket = typeof target === "number" ? Net.connect(target, "127.0.0.1") : Net.connect(target)
    socket.on("error", () => {})
    socket.on("connect", () => socket.end("GET / HTTP/1.1\r\n\r\n"))
  })

describe("NodeTcpServer listen", () => {
  it.live("onListening and address give the bound address: the real port of port 0, a unix socket's path", () =>
    Effect.gen(function* () {
      const seen: Array<Net.AddressInfo | string> = []
      const tcp = yield* serve({ host: "127.0.0.1", port: 0, onListening: (address) => seen.push(address) })
      const port = portOf(tcp.address)
      assert.notStrictEqual(port, 0)
      assert.strictEqual(String(tcp.address), `127.0.0.1:${port}`)
      assert.deepStrictEqual(seen, [{ address: "127.0.0.1", family: "IPv4", port }])

      const path = Path.join(yield* tempDir, "listen.sock")
      const unix = yield* serve({ path, onListening: (address) => seen.push(address) })
      assert.strictEqual(unix.address._tag, "UnixPathAddress")
      assert.strictEqual(String(unix.address), path)
      assert.deepStrictEqual(seen.slice(1), [path])
    }).pipe(Effect.scoped)
  )

  it.live("the listening socket gets the backlog asked for, and SO_REUSEPORT only with reusePort", () =>
    Effect.gen(function* () {
      const queued = yield* serve({ host: "127.0.0.1", port: 0, backlog: 7 })
      assert.strictEqual(backlogOf(portOf(queued.address)), 7)
      // Node's default, 511, without a backlog.
      const plain = yield* serve({ host: "127.0.0.1", port: 0 })
      assert.strictEqual(backlogOf(portOf(plain.address)), 511)
      assert.isFalse(yield* canShare(portOf(plain.address)), "a port bound without SO_REUSEPORT is not shared")

      const shared = yield* serve({ host: "127.0.0.1", port: 0, reusePort: true })
      assert.isTrue(yield* canShare(portOf(shared.address)), "a port bound with SO_REUSEPORT is shared")
    }).pipe(Effect.scoped)
  )

  it.live("logs name the bound address: the port port 0 got, or unix: and the socket's path", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const { key, cert } = yield* certificate
      const tcp = yield* serve({ host: "127.0.0.1", port: 0, tls: { key, cert } })
      const port = portOf(tcp.address)
      yield* notTls(port)
      const failed = () => lines.filter((line) => line.message.startsWith("TLS handshake on"))
      yield* until(() => failed().length === 1, "the TCP server's handshake failure to be logged")
      assert.match(
        failed()[0]!.message,
        new RegExp(`^TLS handshake on 127\\.0\\.0\\.1:${port} failed from 127\\.0\\.0\\.1: not_tls `)
      )

      const path = Path.join(yield* tempDir, "tls.sock")
      yield* serve({ path, tls: { key, cert } })
      yield* notTls(path)
      yield* until(() => failed().length === 2, "the unix server's handshake failure to be logged")
      assert.isTrue(
        failed()[1]!.message.startsWith(`TLS handshake on unix:${path} failed from unknown: not_tls `),
        failed()[1]!.message
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(capturingLogs(lines)),
      Effect.provideService(Metric.MetricRegistry, new Map())
    )
  })

  it.live("a port in use: ListenError names the address, says it is in use, and keeps Node's error", () =>
    Effect.gen(function* () {
      const first = yield* serve({ host: "127.0.0.1", port: 0 })
      const port = portOf(first.address)
      const error = yield* Effect.flip(serve({ host: "127.0.0.1", port }))
      assert.strictEqual(error._tag, "ListenError")
      assert.instanceOf(error, NodeTcpServer.ListenError)
      assert.strictEqual(error.address, `127.0.0.1:${port}`)
      assert.strictEqual((error.cause as NodeJS.ErrnoException).code, "EADDRINUSE")
      assert.strictEqual(
        error.message,
        `cannot listen on 127.0.0.1:${port}: the address is in use (pick another port, or 0 for any free one) (${String(error.cause)})`
      )
    }).pipe(Effect.scoped)
  )

  it.live("a unix socket: ListenError names unix: and the path, and hints at the folder or the path in use", () =>
    Effect.gen(function* () {
      const path = Path.join(yield* tempDir, "missing", "pool.sock")
      const error = yield* Effect.flip(serve({ path }))
      assert.instanceOf(error, NodeTcpServer.ListenError)
      assert.strictEqual(error.address, `unix:${path}`)
      // libuv reports a missing folder of a unix socket as EACCES.
      assert.strictEqual((error.cause as NodeJS.ErrnoException).code, "EACCES")
      assert.strictEqual(
        error.message,
        `cannot listen on unix:${path}: permission denied (the socket's folder must exist and be writable) (${String(error.cause)})`
      )

      const taken = Path.join(yield* tempDir, "taken.sock")
      yield* serve({ path: taken })
      const inUse = yield* Effect.flip(serve({ path: taken }))
      assert.strictEqual((inUse.cause as NodeJS.ErrnoException).code, "EADDRINUSE")
      assert.strictEqual(
        inUse.message,
        `cannot listen on unix:${taken}: the path is in use (another server listens there, or a stale socket file is left) (${String(inUse.cause)})`
      )
    }).pipe(Effect.scoped)
  )

  it.live("an address this host does not have: ListenError with Node's error and no hint", () =>
    Effect.gen(function* () {
      // TEST-NET-1 (RFC 5737): no interface of this machine has it.
      const error = yield* Effect.flip(serve({ host: "192.0.2.1", port: 0 }))
      assert.instanceOf(error, NodeTcpServer.ListenError)
      assert.strictEqual(error.address, "192.0.2.1:0")
      assert.strictEqual((error.cause as NodeJS.ErrnoException).code, "EADDRNOTAVAIL")
      assert.strictEqual(error.message, `cannot listen on 192.0.2.1:0 (${String(error.cause)})`)
    }).pipe(Effect.scoped)
  )

  it("ListenError's hint for a permission refused, and its message without a code or a cause", () => {
    const refused = Object.assign(new Error("listen EACCES: permission denied 0.0.0.0:80"), { code: "EACCES" })
    assert.strictEqual(
      new NodeTcpServer.ListenError({ address: "0.0.0.0:80", cause: refused }).message,
      "cannot listen on 0.0.0.0:80: permission denied (ports below 1024 need privileges) (Error: listen EACCES: permission denied 0.0.0.0:80)"
    )
    assert.strictEqual(
      new NodeTcpServer.ListenError({ address: "::1:6263", cause: new Error("odd") }).message,
      "cannot listen on ::1:6263 (Error: odd)"
    )
    assert.strictEqual(
      new NodeTcpServer.ListenError({ address: "127.0.0.1:6263", cause: undefined }).message,
      "cannot listen on 127.0.0.1:6263 (undefined)"
    )
  })

  it.live("a TLS key that does not match its certificate: ListenError before listening, naming the address", () =>
    Effect.gen(function* () {
      const one = yield* certificate
      const two = yield* certificate
      const error = yield* Effect.flip(serve({ host: "127.0.0.1", port: 0, tls: { key: one.key, cert: two.cert } }))
      assert.instanceOf(error, NodeTcpServer.ListenError)
      assert.strictEqual(error.address, "127.0.0.1:0")
      assert.match(error.message, /^cannot listen on 127\.0\.0\.1:0 \(Error: .*key values mismatch/)
    }).pipe(Effect.scoped)
  )
})
