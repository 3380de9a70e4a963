/**
 * TLS as `NodeTcpServer` serves it: the default cipher suites, client
 * certificates (mutual TLS) and what a callback can learn of the client's
 * certificate to authorize it.
 *
 * With `tlsClientAuth: "require"` (flag `--tls-client-auth require`) and a
 * `tls.ca` (`--tls-ca`), a client must present a certificate that CA signed,
 * or its handshake fails (`pool_tls_handshake_failures_total{reason}` says
 * why); `peerCertificate` then gives the callback its subject and
 * fingerprint.
 *
 * @since 0.2.0
 */
import * as Tls from "node:tls"
import type * as Connection from "@pool-manager/core/Connection"
import * as Schema from "effect/Schema"
import { listenerDefaults } from "./internal/listenerDefaults.ts"
import * as internal from "./internal/tls.ts"

/**
 * Client certificates: not asked for (`none`), asked for but optional
 * (`request`), or required and verified against the CA (`require`).
 *
 * @category models
 * @since 0.2.0
 */
export type ClientAuth = "none" | "request" | "require"

/**
 * The values of `ClientAuth`, in the order `--tls-client-auth` lists them.
 *
 * @category models
 * @since 0.2.0
 */
export const clientAuths: ReadonlyArray<ClientAuth> = internal.clientAuths

/**
 * The default cipher suites: Mozilla's "intermediate" profile, TLS 1.3's
 * suites and TLS 1.2's forward-secret AEAD ones (ECDHE/DHE with AES-GCM or
 * ChaCha20-Poly1305); no RSA key exchange, CBC or SHA-1.
 *
 * @category constants
 * @since 0.2.0
 */
export const intermediateCiphers: string = listenerDefaults.tlsCiphers

/**
 * The reasons of `pool_tls_handshake_failures_total{reason}`.
 *
 * @category models
 * @since 0.2.0
 */
export const handshakeFailureReasons: ReadonlyArray<string> = internal.reasons

/**
 * A client certificate the server's CA verified.
 *
 * @category models
 * @since 0.2.0
 */
export interface PeerCertificate {
  /** The subject as `CN=client,O=Example` (the order OpenSSL gives). */
  readonly subject: string
  /** The issuer, in the same form. */
  readonly issuer: string
  /** SHA-256 fingerprint, as `AB:CD:...`. */
  readonly fingerprint256: string
  readonly serialNumber: string
  readonly validTo: string
}

const distinguishedName = (name: Record<string, string | ReadonlyArray<string>> | undefined): string =>
  Object.entries(name ?? {})
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : value.join("+")}`)
    .join(",")

/**
 * The verified client certificate of a connection served over TLS, or
 * `undefined`: not TLS, no certificate, or one the CA did not verify (with
 * `tlsClientAuth: "request"`, such a client is admitted).
 *
 * @example
 * ```ts
 * import type { PoolError, PoolManager } from "@pool-manager/core"
 * import { NodeTls } from "@pool-manager/node"
 *
 * // Only clients whose certificate says CN=billing may use the service.
 * const callback: PoolManager.Callback<PoolError.ConnectionError> = (conn) => {
 *   const subject = NodeTls.peerCertificate(conn)?.subject ?? ""
 *   return conn.write(subject.includes("CN=billing") ? "OK" : "FORBIDDEN")
 * }
 * ```
 *
 * @category accessors
 * @since 0.2.0
 */
export const peerCertificate = (connection: Connection.Connection): PeerCertificate | undefined => {
  const socket = (connection.transport as { readonly socket?: unknown }).socket
  if (!(socket instanceof Tls.TLSSocket) || !socket.authorized) return undefined
  const cert = socket.getPeerCertificate()
  if (cert === null || Object.keys(cert).length === 0) return undefined
  return {
    subject: distinguishedName(cert.subject as unknown as Record<string, string>),
    issuer: distinguishedName(cert.issuer as unknown as Record<string, string>),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validTo: cert.valid_to
  }
}

/**
 * New TLS files (or options) could not be used: `reason` is OpenSSL's or
 * Node's explanation (e.g. `key values mismatch`). The running ones stay.
 *
 * @category errors
 * @since 0.2.0
 */
export class TlsError extends Schema.TaggedError<TlsError>()("TlsError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot use the TLS settings: ${this.reason}`
  }
}
