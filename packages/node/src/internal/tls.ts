/**
 * The TLS policy of `NodeTcpServer`: the defaults (TLS 1.2 at least, the
 * forward-secret AEAD suites of Mozilla's "intermediate" profile), client
 * certificates (`clientAuth`), the reasons a handshake failed, and their
 * counter `pool_tls_handshake_failures_total{reason}`.
 */
import { X509Certificate } from "node:crypto"
import * as Tls from "node:tls"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { ClientAuth } from "../NodeTls.ts"
import * as CountersBy from "./countersBy.ts"
import { listenerDefaults } from "./listenerDefaults.ts"
import * as LogRateLimit from "./logRateLimit.ts"

export const clientAuths: ReadonlyArray<ClientAuth> = ["none", "request", "require"]

/** The server's options with the policy's defaults under what was given. */
export const withDefaults = (options: Tls.TlsOptions, clientAuth: ClientAuth | undefined): Tls.TlsOptions => ({
  minVersion: listenerDefaults.tlsMinVersion,
  ciphers: listenerDefaults.tlsCiphers,
  handshakeTimeout: listenerDefaults.tlsHandshakeTimeoutMillis,
  ...options,
  // The certificate is checked by `unverified` once the handshake is done:
  // Node's own check would close the socket without saying why.
  ...(clientAuth === undefined || clientAuth === "none" ? {} : { requestCert: true, rejectUnauthorized: false })
})

/**
 * With `require`, why a secured socket's client certificate is not
 * acceptable (as an error for `reasonOf`), or `undefined` when it is (or
 * when none is required).
 */
export const unverified = (socket: Tls.TLSSocket, clientAuth: ClientAuth | undefined): Error | undefined => {
  if (clientAuth !== "require" || socket.authorized) return undefined
  const cert = socket.getPeerCertificate()
  const code =
    cert === null || Object.keys(cert).length === 0
      ? "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
      : String(socket.authorizationError ?? "CERTIFICATE_VERIFY_FAILED")
  return Object.assign(new Error(`client certificate refused: ${code}`), { code })
}

export const reasons = [
  "protocol_version",
  "no_certificate",
  "bad_certificate",
  "unknown_ca",
  "certificate_expired",
  "no_shared_cipher",
  "not_tls",
  "timeout",
  "reset",
  "other"
] as const
export type Reason = (typeof reasons)[number]

const patterns: ReadonlyArray<readonly [RegExp, Reason]> = [
  [/TIMEOUT/i, "timeout"],
  [/UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|VERSION_TOO_LOW|NO_PROTOCOLS_AVAILABLE/i, "protocol_version"],
  [/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED|NO_CERTIFICATE/i, "no_certificate"],
  [/UNKNOWN_CA|UNABLE_TO_GET_ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY_LEAF/i, "unknown_ca"],
  [/EXPIRED/i, "certificate_expired"],
  [
    /BAD_CERTIFICATE|CERTIFICATE_VERIFY_FAILED|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|SIGNATURE_FAILURE|CERT_REJECTED|INVALID_PURPOSE|CERT_NOT_YET_VALID/i,
    "bad_certificate"
  ],
  [/NO_SHARED_CIPHER|NO_CIPHERS|HANDSHAKE_FAILURE/i, "no_shared_cipher"],
  [/WRONG_VERSION_NUMBER|HTTP_REQUEST|PACKET_LENGTH_TOO_LONG|RECORD_LAYER/i, "not_tls"],
  [/ECONNRESET|EPIPE|socket hang up|disconnected/i, "reset"]
]

/** The reason of a handshake's error, from its code (an OpenSSL error or TLS alert) or message. */
export const reasonOf = (error: unknown): Reason => {
  const code = String((error as { code?: unknown } | undefined)?.code ?? "")
  const text = `${code} ${error instanceof Error ? error.message : String(error)}`
  return patterns.find(([pattern]) => pattern.test(text))?.[1] ?? "other"
}

/** Counts and logs (rate-limited) failed handshakes until the scope closes. */
export const handshakeFailures = (
  where: () => string
): Effect.Effect<(error: unknown, peer: string | undefined) => void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const counts = yield* CountersBy.make(
      "pool_tls_handshake_failures_total",
      "TLS handshakes that failed, by reason (TLS alert or error)",
      "reason",
      reasons
    )
    const warn = yield* LogRateLimit.make({ kind: "TLS handshake failures" })
    return (error, peer) => {
      const reason = reasonOf(error)
      counts[reason]++
      const code = String((error as { code?: unknown } | undefined)?.code ?? "")
      warn(
        Effect.logWarning(
          `TLS handshake on ${where()} failed from ${peer ?? "unknown"}: ${reason} (${code || (error instanceof Error ? error.message : String(error))})`
        ).pipe(Effect.annotateLogs({ tlsPeer: peer ?? "unknown", reason, code }))
      )
    }
  })

/**
 * Checks that `options` make a context (key and certificate that match, a CA
 * of certificates): throws Node's error, or one naming the CA's fault, if not.
 */
export const check = (options: Tls.TlsOptions): Tls.SecureContext => {
  const context = Tls.createSecureContext(options)
  if (options.ca !== undefined) checkCa(options.ca)
  return context
}

// A PEM certificate as Node's `ca` reads them, under any of the labels OpenSSL takes.
const pemBlock = /-----BEGIN ((?:TRUSTED |X509 )?CERTIFICATE)-----[\s\S]*?-----END \1-----/g

/**
 * Node skips what it cannot read in a `ca` without a word: a file of garbage,
 * or a certificate cut short, is then no CA at all, and a server that requires
 * client certificates refuses every client. Each entry must hold a PEM
 * certificate, and each of its certificates must parse.
 */
const checkCa = (ca: NonNullable<Tls.TlsOptions["ca"]>): void => {
  const entries = Array.isArray(ca) ? ca : [ca]
  entries.forEach((entry, index) => {
    const name = entries.length > 1 ? `ca[${index}]` : "ca"
    // PEM is ASCII: a Buffer read as UTF-8 finds the same blocks.
    const text = String(entry)
    const blocks = Array.from(text.matchAll(pemBlock))
    if (blocks.length === 0) {
      throw new Error(`${name} holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)`)
    }
    blocks.forEach((block, n) => {
      try {
        new X509Certificate(block[0])
      } catch (error) {
        throw new Error(
          `${name}: certificate ${n + 1} of ${blocks.length} does not parse (${error instanceof Error ? error.message : String(error)})`
        )
      }
    })
  })
}
