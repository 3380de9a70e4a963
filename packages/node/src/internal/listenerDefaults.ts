/**
 * The defaults of `NodeTcpServer`'s listener, written once: where it
 * listens, what a refused client is told, the pending cap, the lame-duck
 * period and the TLS policy. `NodeTcpServer` fills in what its options leave
 * out from here, `internal/tls.ts` the TLS options, and the server's flags
 * (`internal/serverFlags.ts`) fall back to and show the same values, so the
 * library and the command cannot drift apart.
 */
import type * as Tls from "node:tls"
import * as Duration from "effect/Duration"
import type { ClientAuth } from "../NodeTls.ts"

/**
 * Mozilla's "intermediate" server profile (version 5.7): TLS 1.3's suites,
 * then TLS 1.2's ECDHE and DHE suites with AES-GCM or ChaCha20-Poly1305. No
 * RSA key exchange, no CBC, no SHA-1.
 */
export const intermediateCiphers: string = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
  "DHE-RSA-CHACHA20-POLY1305"
].join(":")

/** One row per default of the listener, with why it is what it is. */
export const listenerDefaults: {
  readonly host: string
  readonly port: number
  readonly busyReply: string
  readonly maxPendingConnections: number
  readonly shutdownDelay: Duration.Duration
  readonly tlsClientAuth: ClientAuth
  readonly tlsMinVersion: Tls.SecureVersion
  readonly tlsCiphers: string
  readonly tlsHandshakeTimeoutMillis: number
} = {
  /** Loopback, as in the Go original's example: nothing is exposed unless asked. */
  host: "127.0.0.1",
  /** The Go original's example port. */
  port: 6263,
  /** The Go original's answer to a client refused while every worker is busy. */
  busyReply: "ERROR_SERVER_BUSY",
  /** Connections in a TLS handshake or awaiting a PROXY header at once: a bound on what a flood of them holds. */
  maxPendingConnections: 1024,
  /** No lame-duck period: a stop closes the listener at once. */
  shutdownDelay: Duration.zero,
  /** Client certificates are not asked for. */
  tlsClientAuth: "none",
  /** TLS 1.0 and 1.1 are deprecated (RFC 8996). */
  tlsMinVersion: "TLSv1.2",
  tlsCiphers: intermediateCiphers,
  /** A handshake not done in 10 seconds is dropped, so stalled clients do not hold pending slots. */
  tlsHandshakeTimeoutMillis: 10_000
}
