/**
 * TLS as an operator runs it, on the real command with certificates from a
 * real CA (openssl): certificate rotation on SIGHUP (new handshakes get the
 * new pair, open connections are untouched, a pair that does not load keeps
 * the old one), the default policy (TLS 1.2 at least, no CBC/SHA-1 suites),
 * `--tls-min-version`, mutual TLS with `--tls-ca` and `--tls-client-auth`,
 * and every failed handshake counted in
 * `pool_tls_handshake_failures_total{reason}` and logged.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bin, get, parsePrometheus, spawnNode, total } from "./utils/cliProcess.ts"
import { type Pair, pki } from "./utils/pki.ts"

interface Handshake {
  readonly reply?: string
  readonly subject?: string
  readonly error?: string
}

/** A TLS client: handshake (trusting `ca`), send HI!, read the reply; or how it failed. */
const handshake = (port: number, options: Tls.ConnectionOptions) =>
  Effect.callback<Handshake & { readonly socket?: Tls.TLSSocket }>((resume) => {
    const socket = Tls.connect({ host: "127.0.0.1", port, servername: "localhost", ...options }, () => {
      const subject = socket.getPeerCertificate().subject?.CN
      socket.write("HI!")
      socket.once("data", (reply) =>
        resume(Effect.succeed({ reply: reply.toString(), subject: String(subject), socket }))
      )
    })
    socket.on("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed({ error: error.code ?? error.message })))
    socket.on("close", () => resume(Effect.succeed({ error: "closed" })))
    return Effect.sync(() => socket.destroy())
  }).pipe(
    Effect.timeout("10 seconds"),
    Effect.tap(({ socket }) => Effect.addFinalizer(() => Effect.sync(() => socket?.destroy())))
  )

const failures = (metrics: string) =>
  Effect.map(get(`${metrics}/metrics`), ({ body }) => {
    const samples = parsePrometheus(body)
    return (reason: string) => total(samples, "pool_tls_handshake_failures_total", { reason })
  })

const start = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([bin, "--port", "0", "--metrics-port", "0", ...args])
    const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) .* tls=true/))[1])
    const metrics = (yield* child.waitFor(/metrics at (http:\S+)\/metrics/))[1]!
    return { child, port, metrics }
  })

const copy = (pair: Pair, to: { readonly keyFile: string; readonly certFile: string }) => {
  Fs.writeFileSync(to.keyFile, pair.key)
  Fs.writeFileSync(to.certFile, pair.cert)
}

describe("NodeCli TLS policy", () => {
  it.live(
    "rotates the certificate on SIGHUP: new handshakes get the new pair, open connections stay, a bad pair is refused",
    () =>
      Effect.gen(function* () {
        const { ca, issue, dir } = yield* pki
        const authority = ca("rotation-ca")
        const one = issue(authority, "one", { server: true })
        const two = issue(authority, "two", { server: true })
        const live = { keyFile: `${dir}/live.key.pem`, certFile: `${dir}/live.cert.pem` }
        copy(one, live)
        const { child, port } = yield* start(["--tls-key", live.keyFile, "--tls-cert", live.certFile])
        const trust = { ca: [authority.cert] }
        const before = yield* handshake(port, trust)
        assert.deepInclude(before, { reply: "OK", subject: "one" })

        copy(two, live)
        child.process.kill("SIGHUP")
        yield* child.waitFor(/SIGHUP: TLS key and certificate reloaded/)
        assert.deepInclude(yield* handshake(port, trust), { reply: "OK", subject: "two" })
        // The connection made before the rotation still works.
        before.socket!.write("HI!")
        const again = yield* Effect.callback<string>((resume) => {
          before.socket!.once("data", (reply) => resume(Effect.succeed(reply.toString())))
        }).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(again, "OK")

        // A key that does not match its certificate: logged, and the running pair stays.
        Fs.writeFileSync(live.keyFile, one.key)
        child.process.kill("SIGHUP")
        yield* child.waitFor(/TLS reload failed, keeping the running key and certificate: .*key values mismatch/)
        assert.deepInclude(yield* handshake(port, trust), { reply: "OK", subject: "two" })
        assert.isNull(child.process.exitCode)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "refuses old versions and CBC suites by default, counts each failed handshake by reason, and logs it",
    () =>
      Effect.gen(function* () {
        const { ca, issue } = yield* pki
        const authority = ca("policy-ca")
        const server = issue(authority, "server", { server: true })
        const { child, port, metrics } = yield* start([
          ...["--tls-key", server.keyFile, "--tls-cert", server.certFile],
          ...["--tls-min-version", "TLSv1.3"]
        ])
        const trust = { ca: [authority.cert] }
        assert.deepInclude(yield* handshake(port, trust), { reply: "OK" })
        // TLS 1.2 only, against a server at 1.3 at least.
        assert.isDefined((yield* handshake(port, { ...trust, maxVersion: "TLSv1.2" })).error)
        // Not TLS at all.
        yield* Effect.callback<void>((resume) => {
          const socket = Net.connect(port, "127.0.0.1", () => socket.write("GET / HTTP/1.1\r\n\r\n"))
          socket.on("error", () => {})
          socket.on("close", () => resume(Effect.void))
        }).pipe(Effect.timeout("5 seconds"))
        yield* child.waitFor(/TLS handshake on 127\.0\.0\.1:\d+ failed from 127\.0\.0\.1: not_tls/)
        const count = yield* failures(metrics)
        assert.strictEqual(count("protocol_version"), 1)
        assert.strictEqual(count("not_tls"), 1)
        assert.match(child.stdout(), /TLS handshake on .* failed from 127\.0\.0\.1: protocol_version/)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)

        // The default policy: TLS 1.2 with a CBC/SHA-1 suite is refused, an AEAD suite served.
        const policy = yield* start(["--tls-key", server.keyFile, "--tls-cert", server.certFile])
        const tls12 = { ...trust, maxVersion: "TLSv1.2" as const }
        assert.deepInclude(yield* handshake(policy.port, { ...tls12, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" }), {
          reply: "OK"
        })
        assert.isDefined((yield* handshake(policy.port, { ...tls12, ciphers: "ECDHE-ECDSA-AES128-SHA" })).error)
        assert.strictEqual((yield* failures(policy.metrics))("no_shared_cipher"), 1)
        policy.child.process.kill("SIGTERM")
        assert.strictEqual(yield* policy.child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "--tls-client-auth require: a client without a certificate, or with one of another CA, is refused and counted",
    () =>
      Effect.gen(function* () {
        const { ca, issue } = yield* pki
        const authority = ca("mtls-ca")
        const stranger = ca("stranger-ca")
        const server = issue(authority, "server", { server: true })
        const client = issue(authority, "client")
        const intruder = issue(stranger, "intruder")
        const { child, port, metrics } = yield* start([
          ...["--tls-key", server.keyFile, "--tls-cert", server.certFile],
          ...["--tls-ca", authority.certFile, "--tls-client-auth", "require"]
        ])
        const trust = { ca: [authority.cert] }
        assert.deepInclude(yield* handshake(port, { ...trust, key: client.key, cert: client.cert }), { reply: "OK" })
        assert.isDefined((yield* handshake(port, trust)).error)
        assert.isDefined((yield* handshake(port, { ...trust, key: intruder.key, cert: intruder.cert })).error)
        yield* child.waitForAll(/TLS handshake on .* failed from 127\.0\.0\.1: (no_certificate|unknown_ca)/, 2)
        const count = yield* failures(metrics)
        assert.strictEqual(count("no_certificate"), 1)
        assert.strictEqual(count("unknown_ca"), 1)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
