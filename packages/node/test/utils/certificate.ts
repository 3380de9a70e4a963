/**
 * A self-signed certificate for the TLS tests, made with Debian's openssl in
 * a temporary folder removed with the scope.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"

/** A temporary folder, removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pool-manager-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A self-signed certificate for localhost / 127.0.0.1 (key and certificate as PEM). */
export const certificate = Effect.gen(function* () {
  const dir = yield* tempDir
  const key = Path.join(dir, "key.pem")
  const cert = Path.join(dir, "cert.pem")
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1"
    ],
    { stdio: "ignore" }
  )
  return { key: Fs.readFileSync(key), cert: Fs.readFileSync(cert) }
})
