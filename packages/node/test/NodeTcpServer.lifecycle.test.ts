/**
 * What a `NodeTcpServer` tells and does over its life, in the test process:
 * `connections` and `draining` while it serves and stops, the lame-duck
 * period (`shutdownDelay`: still accepting, logged, then closed), and
 * `reloadTls` (refused on a plain listener and for a key that does not match
 * its certificate; otherwise the next handshake gets the new certificate);
 * and the listen under it (internal/listen.ts): a bind error fails it, an
 * error once listening is absorbed. The command's reload through SIGHUP is tested in NodeCliTls.test.ts.
 */
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { NodeTcpServer, NodeTls } from "../src/index.ts"
import { listen } from "../src/internal/listen.ts"
import { certificate } from "./utils/certificate.ts"
import { connect, portOf } from "./utils/client.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { until } from "./utils/socketPair.ts"

const Pool = PoolManager.layer({ maxWorkersCount: 4 }, (conn) => Effect.ignore(conn.write("OK")))

/** A server built in a scope of its own, which the test closes (or the test's scope does). */
const serverIn = (options: NodeTcpServer.Options) =>
  Effect.gen(function* () {
    const scope = yield* Scope.fork(yield* Effect.scope)
    // The pool lives in the same scope, closed after the server (finalizers run in reverse).
    const pool = yield* Layer.build(Pool).pipe(Scope.provide(scope))
    const server = yield* NodeTcpServer.make({ host: "127.0.0.1", port: 0, ...options }).pipe(
      Scope.provide(scope),
      Effect.provideContext(pool)
    )
    return { server, scope, port: portOf(server.address) }
  })

/** The SHA-256 fingerprint of the certificate a TLS handshake with `port` presents. */
const presented = (port: number) =>
  Effect.callback<string>((resume) => {
    const socket = Tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.destroy()
      resume(Effect.succeed(fingerprint))
    })
    socket.once("error", (error) => resume(Effect.die(error)))
  })

const fingerprintOf = (cert: Buffer) => new Crypto.X509Certificate(cert).fingerprint256

describe("NodeTcpServer lifecycle", () => {
  it.live("counts open connections, and drains for shutdownDelay, still accepting, before it closes", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const { server, scope, port } = yield* serverIn({ shutdownDelay: "2 seconds" })
      assert.isFalse(yield* server.draining)
      assert.strictEqual(yield* server.connections, 0)
      const first = yield* connect(port)
      yield* first.send("one")
      assert.strictEqual(yield* first.receive(2), "OK")
      assert.strictEqual(yield* server.connections, 1)

      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* until(() => lines.some((line) => line.message.startsWith("shutting down")), "the lame-duck line")
      assert.isTrue(yield* server.draining)
      assert.deepStrictEqual(
        lines.map((line) => line.message),
        ["shutting down: still accepting on 127.0.0.1:0 for 2s before closing (signal again to skip)"]
      )
      // Still accepting: a new client is served during the delay.
      const late = yield* connect(port)
      yield* late.send("two")
      assert.strictEqual(yield* late.receive(2), "OK")
      yield* until(() => Effect.runSync(server.connections) === 2, "two connections counted")
      yield* Fiber.join(closing)
      // Closed: a new connection is refused.
      const refused = yield* Effect.callback<string>((resume) => {
        const socket = Net.connect(port, "127.0.0.1", () => {
          socket.destroy()
          resume(Effect.succeed("connected"))
        })
        socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? "error")))
      })
      assert.strictEqual(refused, "ECONNREFUSED")
    }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)))
  })

  it.live("closes at once without a shutdownDelay", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const { server, scope } = yield* serverIn({})
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* server.draining)
      assert.deepStrictEqual(lines, [])
    }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)))
  })

  it.live("reloadTls: refused on a plain listener and for a mismatched pair; the next handshake gets the new one", () =>
    Effect.gen(function* () {
      const one = yield* certificate
      const two = yield* certificate
      const plain = yield* serverIn({})
      const notTls = yield* Effect.flip(plain.server.reloadTls(two))
      assert.instanceOf(notTls, NodeTls.TlsError)
      assert.strictEqual(notTls.message, "cannot use the TLS settings: 127.0.0.1:0 does not serve TLS")

      const secure = yield* serverIn({ tls: one })
      assert.strictEqual(yield* presented(secure.port), fingerprintOf(one.cert))
      const mismatched = yield* Effect.flip(secure.server.reloadTls({ key: one.key, cert: two.cert }))
      assert.instanceOf(mismatched, NodeTls.TlsError)
      assert.match(mismatched.reason, /key|certificate/i)
      // The refused pair changed nothing.
      assert.strictEqual(yield* presented(secure.port), fingerprintOf(one.cert))
      yield* secure.server.reloadTls(two)
      assert.strictEqual(yield* presented(secure.port), fingerprintOf(two.cert))
      // A later reload keeps what it does not name: only the key and certificate changed here.
      yield* secure.server.reloadTls({ key: one.key, cert: one.cert })
      assert.strictEqual(yield* presented(secure.port), fingerprintOf(one.cert))
    }).pipe(Effect.scoped)
  )

  it.live("once listening, an error on the listener is absorbed (Node retries accepting), and a bind error fails", () =>
    Effect.gen(function* () {
      let bound = 0
      const server = yield* listen(Net.createServer(), { host: "127.0.0.1", port: 0 }, () => {
        bound++
      })
      assert.strictEqual(bound, 1)
      assert.strictEqual(server.listenerCount("error"), 1, "only the absorbing listener is left")
      assert.doesNotThrow(() => server.emit("error", Object.assign(new Error("accept"), { code: "EMFILE" })))
      const port = (server.address() as Net.AddressInfo).port
      const taken = yield* Effect.flip(listen(Net.createServer(), { host: "127.0.0.1", port }))
      assert.strictEqual((taken as NodeJS.ErrnoException).code, "EADDRINUSE")
    }).pipe(Effect.scoped)
  )
})
