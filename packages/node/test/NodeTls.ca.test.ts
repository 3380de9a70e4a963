/**
 * What the TLS policy's `check` (internal/tls.ts) asks of a `ca`, beyond
 * Node's own checks: Node skips what it cannot read there without a word, so
 * a file of garbage or a certificate cut short would leave a server that
 * requires client certificates refusing every client. Each entry must hold a
 * PEM certificate and each certificate must parse; one that does is taken
 * under any of OpenSSL's labels, alone, bundled or in an array.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as TlsPolicy from "../src/internal/tls.ts"
import { pki } from "./utils/pki.ts"

/** A CA, a second one, and a server's key and certificate the first signed. */
const setup = Effect.gen(function* () {
  const { ca, issue } = yield* pki
  const authority = ca("authority")
  const other = ca("other")
  const server = issue(authority, "server", { server: true })
  const pem = (pair: { readonly cert: Buffer }) => pair.cert.toString("latin1")
  // The certificate with its base64 body cut in half: still one PEM block, no longer a certificate.
  const cut = (text: string) => {
    const lines = text.trimEnd().split("\n")
    const body = lines.slice(1, -1)
    return [lines[0], ...body.slice(0, Math.ceil(body.length / 2)), lines.at(-1)].join("\n")
  }
  const check = (ca: string | Buffer | Array<string | Buffer>) =>
    TlsPolicy.check({ key: server.key, cert: server.cert, ca })
  // What `f` threw; failing the test if it threw nothing.
  const thrown = (f: () => unknown, what: string): Error & { readonly code?: string } => {
    try {
      f()
    } catch (error) {
      return error as Error & { readonly code?: string }
    }
    return assert.fail(what)
  }
  const failure = (ca: string | Buffer | Array<string | Buffer>): string =>
    thrown(() => check(ca), "check took the CA").message
  return { authority, other, server, pem, cut, check, failure, thrown }
})

describe("NodeTls ca", { timeout: 10_000 }, () => {
  it.effect("takes certificates alone, bundled, in an array, as text or bytes, under any of OpenSSL's labels", () =>
    Effect.gen(function* () {
      const { authority, other, pem, check } = yield* setup
      check(authority.cert)
      check(pem(authority))
      check(pem(authority) + pem(other))
      check([authority.cert, pem(other)])
      check(pem(authority).replaceAll("CERTIFICATE", "TRUSTED CERTIFICATE"))
      check(
        `${pem(other)}comments around the blocks are left alone\n${pem(authority).replaceAll("CERTIFICATE", "X509 CERTIFICATE")}`
      )
    }).pipe(Effect.scoped)
  )

  it.effect("refuses an entry without a certificate, naming the entry", () =>
    Effect.gen(function* () {
      const { authority, server, pem, failure } = yield* setup
      const none = 'holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)'
      assert.strictEqual(failure("garbage\n"), `ca ${none}`)
      assert.strictEqual(failure(""), `ca ${none}`)
      // A key is PEM too, but no certificate.
      assert.strictEqual(failure(server.key), `ca ${none}`)
      assert.strictEqual(failure([authority.cert, "garbage"]), `ca[1] ${none}`)
      assert.strictEqual(failure(["garbage", pem(authority)]), `ca[0] ${none}`)
      // A block whose end does not match its beginning is no block.
      assert.strictEqual(failure(pem(authority).replace("END CERTIFICATE", "END TRUSTED CERTIFICATE")), `ca ${none}`)
    }).pipe(Effect.scoped)
  )

  it.effect("refuses a certificate that does not parse, naming which of how many", () =>
    Effect.gen(function* () {
      const { authority, other, pem, cut, failure } = yield* setup
      assert.match(failure(cut(pem(authority))), /^ca: certificate 1 of 1 does not parse \(.+\)$/)
      assert.match(failure(pem(other) + cut(pem(authority))), /^ca: certificate 2 of 2 does not parse \(.+\)$/)
      assert.match(
        failure([pem(other), cut(pem(authority)) + pem(other)]),
        /^ca\[1\]: certificate 1 of 2 does not parse/
      )
    }).pipe(Effect.scoped)
  )

  it.effect("Node's own checks come first: a key that does not match its certificate", () =>
    Effect.gen(function* () {
      const { authority, server, cut, pem, thrown } = yield* setup
      const error = thrown(
        () => TlsPolicy.check({ key: authority.key, cert: server.cert, ca: cut(pem(authority)) }),
        "check took a key of another certificate"
      )
      assert.notMatch(error.message, /^ca\b/)
      assert.strictEqual(error.code, "ERR_OSSL_X509_KEY_VALUES_MISMATCH")
    }).pipe(Effect.scoped)
  )
})
