/**
 * `readTls` (internal/cliServe.ts), what the command and its SIGHUP reload
 * read the TLS files with: the key and the certificate, and the CA only when
 * `--tls-ca` was given (the result is spread over the server's TLS options, so
 * an absent CA is no `ca` key at all); a file that cannot be read, or a CA
 * file without a certificate, is one line naming every file given.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readTls } from "../src/internal/cliServe.ts"
import { pki } from "./utils/pki.ts"

/** A CA, and a server's key and certificate it signed, on disk. */
const files = Effect.gen(function* () {
  const { dir, ca, issue } = yield* pki
  const authority = ca("authority")
  const server = issue(authority, "server", { server: true })
  return { dir, authority, server }
})

describe("NodeCli readTls", { timeout: 10_000 }, () => {
  it.effect("without --tls-ca: the key and the certificate, and no ca key", () =>
    Effect.gen(function* () {
      const { server } = yield* files
      const tls = yield* readTls({ key: server.keyFile, cert: server.certFile })
      assert.deepStrictEqual(Object.keys(tls).sort(), ["cert", "key"])
      assert.isTrue(tls.key.equals(server.key) && tls.cert.equals(server.cert), "the files' contents")
    }).pipe(Effect.scoped)
  )

  it.effect("with --tls-ca: the CA's certificate as ca too", () =>
    Effect.gen(function* () {
      const { server, authority } = yield* files
      const tls = yield* readTls({ key: server.keyFile, cert: server.certFile, ca: authority.certFile })
      assert.deepStrictEqual(Object.keys(tls).sort(), ["ca", "cert", "key"])
      assert.isTrue(tls.ca?.equals(authority.cert), "the CA file's contents")
      assert.isTrue(tls.key.equals(server.key) && tls.cert.equals(server.cert), "the files' contents")
    }).pipe(Effect.scoped)
  )

  it.effect("a CA file that cannot be read: the message names the three files", () =>
    Effect.gen(function* () {
      const { server, dir } = yield* files
      const missing = Path.join(dir, "missing-ca.pem")
      const error = yield* Effect.flip(readTls({ key: server.keyFile, cert: server.certFile, ca: missing }))
      assert.include(
        error.message,
        `cannot use --tls-key ${server.keyFile} and --tls-cert ${server.certFile} and --tls-ca ${missing}: ENOENT`
      )
    }).pipe(Effect.scoped)
  )

  it.effect("a CA file that holds no certificate: the message names the three files and says so", () =>
    Effect.gen(function* () {
      const { server, authority } = yield* files
      // Node's own context takes such a CA as none at all; with --tls-client-auth require every client would be refused.
      const error = yield* Effect.flip(readTls({ key: server.keyFile, cert: server.certFile, ca: authority.keyFile }))
      assert.strictEqual(
        error.message,
        `cannot use --tls-key ${server.keyFile} and --tls-cert ${server.certFile} and --tls-ca ${authority.keyFile}: ` +
          'ca holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)'
      )
    }).pipe(Effect.scoped)
  )

  it.effect("a key that does not match its certificate, without --tls-ca: the message names the two files", () =>
    Effect.gen(function* () {
      const { server, authority, dir } = yield* files
      const key = Path.join(dir, "other.key.pem")
      Fs.copyFileSync(authority.keyFile, key)
      const error = yield* Effect.flip(readTls({ key, cert: server.certFile }))
      assert.match(error.message, new RegExp(`^cannot use --tls-key ${key} and --tls-cert ${server.certFile}: \\S`))
    }).pipe(Effect.scoped)
  )
})
