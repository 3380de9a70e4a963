/**
 * A small PKI for the mutual-TLS tests, made with Debian's openssl in a
 * temporary folder removed with the scope: a CA, certificates it signs (a
 * server's for localhost / 127.0.0.1, clients' with a given CN or subject), and files
 * for each as PEM.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { tempDir } from "./certificate.ts"

/** A key and certificate on disk, and their contents. */
export interface Pair {
  readonly keyFile: string
  readonly certFile: string
  readonly key: Buffer
  readonly cert: Buffer
}

const openssl = (args: ReadonlyArray<string>) => execFileSync("openssl", args, { stdio: "ignore" })

const read = (keyFile: string, certFile: string): Pair => ({
  keyFile,
  certFile,
  key: Fs.readFileSync(keyFile),
  cert: Fs.readFileSync(certFile)
})

const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** A PKI in a temporary folder: `ca(name)` makes a CA, `issue(ca, name, ...)` a certificate it signs. */
export const pki = Effect.gen(function* () {
  const dir = yield* tempDir
  const ca = (name: string): Pair => {
    const keyFile = Path.join(dir, `${name}.key.pem`)
    const certFile = Path.join(dir, `${name}.cert.pem`)
    openssl(["req", "-x509", ...newKey, "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", `/CN=${name}`])
    return read(keyFile, certFile)
  }
  const issue = (
    authority: Pair,
    name: string,
    options: { readonly server?: boolean; readonly subject?: string } = {}
  ): Pair => {
    const keyFile = Path.join(dir, `${name}.key.pem`)
    const certFile = Path.join(dir, `${name}.cert.pem`)
    const csr = Path.join(dir, `${name}.csr`)
    const ext = Path.join(dir, `${name}.ext`)
    Fs.writeFileSync(
      ext,
      options.server === true
        ? "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        : "extendedKeyUsage=clientAuth\n"
    )
    openssl([
      "req",
      ...newKey,
      "-keyout",
      keyFile,
      "-out",
      csr,
      "-subj",
      options.subject ?? `/CN=${name}/O=pool-manager tests`
    ])
    openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      authority.certFile,
      "-CAkey",
      authority.keyFile,
      "-CAcreateserial",
      "-out",
      certFile,
      "-days",
      "1",
      "-extfile",
      ext
    ])
    return read(keyFile, certFile)
  }
  return { dir, ca, issue }
})
