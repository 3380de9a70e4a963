/**
 * NodeTcpServer over TLS (a certificate made with Debian's openssl for the
 * test) and over a unix domain socket.
 */

import * as Path from "node:path"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { PoolManager } from "@pool-manager/core"
import { Context, Effect, Layer } from "effect"
import { NodeTcpServer } from "../src/index.ts"
import { certificate, tempDir } from "./utils/certificate.ts"
import { connect, portOf } from "./utils/client.ts"

const callback: PoolManager.Callback = (conn, _body, len) => Effect.ignore(conn.write(len > 0 ? "OK" : "ERROR"))

const serve = (options: NodeTcpServer.Options) =>
  Effect.map(
    Layer.build(NodeTcpServer.layer(options).pipe(Layer.provide(PoolManager.layer({ maxWorkersCount: 4 }, callback)))),
    (context) => Context.get(context, NodeTcpServer.NodeTcpServer)
  )

const tlsRequest = (port: number, ca: Buffer, message: string) =>
  Effect.callback<string, Error>((resume) => {
    const socket = Tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => socket.write(message))
    let reply = ""
    socket.on("data", (chunk) => {
      reply += chunk.toString()
      if (reply.length >= 2) {
        socket.end()
        resume(Effect.succeed(reply))
      }
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("5 seconds"))

describe("NodeTcpServer transports", () => {
  it.live("serves TLS clients through the same pool, and survives a client that is not speaking TLS", () =>
    Effect.gen(function* () {
      const { key, cert } = yield* certificate
      const server = yield* serve({ port: 0, tls: { key, cert } })
      const port = portOf(server.address)
      assert.strictEqual(yield* tlsRequest(port, cert, "HI!"), "OK")
      const plain = yield* connect(port)
      yield* plain.send("HI! in plain text, not a TLS hello")
      yield* plain.closed()
      const replies = yield* Effect.forEach([1, 2, 3], () => tlsRequest(port, cert, "HI!"), { concurrency: 3 })
      assert.deepStrictEqual(replies, ["OK", "OK", "OK"])
    })
  )

  it.live("listens on a unix domain socket", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = Path.join(dir, "pool.sock")
      const server = yield* serve({ path })
      assert.strictEqual(server.address._tag, "UnixPathAddress")
      const client = yield* connect(path)
      yield* client.send("HI!")
      assert.strictEqual(yield* client.receive(2), "OK")
    })
  )
})
