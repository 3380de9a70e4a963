/**
 * `pool-manager --tls-key FILE --tls-cert FILE`: serves TLS with a
 * certificate made by Debian's openssl (as a child process, and in this
 * process), and refuses a key that does not match its certificate before
 * listening.
 */

import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Tls from "node:tls"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Command } from "effect/cli"
import { NodeCli } from "../src/index.ts"
import { bin, spawnNode, tempDir } from "./utils/cliProcess.ts"
import { startCommand } from "./utils/command.ts"

/** A self-signed certificate for 127.0.0.1 in `dir`, as PEM files. */
const certificate = (dir: string, name: string) => {
  const key = Path.join(dir, `${name}.key.pem`)
  const cert = Path.join(dir, `${name}.cert.pem`)
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    ],
    { stdio: "ignore" }
  )
  return { key, cert }
}

/** Sends `message` over TLS (trusting `ca`) and resolves with the reply. */
const tlsRequest = (port: number, ca: string, message: string) =>
  Effect.callback<string, Error>((resume) => {
    const socket = Tls.connect({ host: "127.0.0.1", port, ca: [ca], servername: "localhost" }, () =>
      socket.write(message)
    )
    socket.setEncoding("utf8")
    socket.once("data", (reply: string) => {
      socket.destroy()
      resume(Effect.succeed(reply))
    })
    socket.once("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("5 seconds"))

describe("NodeCli TLS", () => {
  it.live(
    "serves TLS with --tls-key and --tls-cert",
    () =>
      Effect.gen(function* () {
        const { key, cert } = certificate(yield* tempDir, "server")
        const child = yield* spawnNode([bin, "--port", "0", "--tls-key", key, "--tls-cert", cert])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) .* tls=true/))[1])
        const ca = Fs.readFileSync(cert, "utf8")
        assert.strictEqual(yield* tlsRequest(port, ca, "HI!"), "OK")
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("the command in this process serves TLS with the key and certificate of the files", () =>
    Effect.gen(function* () {
      const { key, cert } = certificate(yield* tempDir, "server")
      const server = yield* startCommand(["--host", "127.0.0.1", "--port", "0", "--tls-key", key, "--tls-cert", cert])
      assert.include(server.listening, " tls=true")
      const reply = yield* tlsRequest(server.port, Fs.readFileSync(cert, "utf8"), "HI!").pipe(
        Effect.catch((error) => Effect.succeed(`no reply: ${error.message}`))
      )
      assert.strictEqual(reply, "OK")
      yield* Fiber.interrupt(server.fiber)
    }).pipe(Effect.scoped)
  )

  it.live(
    "refuses a key that does not match the certificate, before listening",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const one = certificate(dir, "one")
        const two = certificate(dir, "two")
        const cli = Command.runWith(NodeCli.command({ callback: () => Effect.void }), { version: "test" })
        const error = yield* Effect.flip(cli(["--port", "0", "--tls-key", one.key, "--tls-cert", two.cert]))
        assert.strictEqual(error._tag, "UserError")
        assert.include(error.message, `cannot use --tls-key ${one.key} and --tls-cert ${two.cert}`)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    30_000
  )
})
