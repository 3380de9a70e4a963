/**
 * The TLS policy's pure parts (internal/tls.ts): the defaults under what a
 * user gave, which client certificate `require` refuses and with what code,
 * the reason every known handshake error maps to (by code, or by message when
 * it has none), and the failure counter and warning. NodeCli.tlsPolicy and
 * NodeCliTls make real handshakes fail.
 */
import type * as Tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { PrometheusMetrics } from "effect/observability"
import * as TlsPolicy from "../src/internal/tls.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"

const socket = (fields: { authorized: boolean; cert: object | null; authorizationError?: string }) =>
  ({
    authorized: fields.authorized,
    authorizationError: fields.authorizationError,
    getPeerCertificate: () => fields.cert
  }) as unknown as Tls.TLSSocket

const withCode = (code: string, message = "handshake failed") => Object.assign(new Error(message), { code })

describe("NodeTls policy", () => {
  it("puts the defaults under what was given, and asks for client certificates only when told", () => {
    const defaults = TlsPolicy.withDefaults({}, undefined)
    assert.strictEqual(defaults.minVersion, "TLSv1.2")
    assert.isString(defaults.ciphers)
    assert.isAbove(defaults.handshakeTimeout ?? 0, 0)
    assert.isUndefined(defaults.requestCert)
    assert.isUndefined(TlsPolicy.withDefaults({}, "none").requestCert)
    const given = TlsPolicy.withDefaults({ minVersion: "TLSv1.3", ciphers: "TLS_AES_128_GCM_SHA256" }, "request")
    assert.strictEqual(given.minVersion, "TLSv1.3")
    assert.strictEqual(given.ciphers, "TLS_AES_128_GCM_SHA256")
    // Checked by `unverified` after the handshake, so the refusal can say why.
    assert.deepInclude(given, { requestCert: true, rejectUnauthorized: false })
    assert.deepInclude(TlsPolicy.withDefaults({}, "require"), { requestCert: true, rejectUnauthorized: false })
  })

  it("with require, refuses a missing or unverified client certificate, naming why", () => {
    const cert = { subject: { CN: "client" } }
    assert.isUndefined(TlsPolicy.unverified(socket({ authorized: false, cert: null }), "request"))
    assert.isUndefined(TlsPolicy.unverified(socket({ authorized: false, cert: null }), undefined))
    assert.isUndefined(TlsPolicy.unverified(socket({ authorized: true, cert }), "require"))
    const codeOf = (refused: Error | undefined) => [refused?.message, (refused as { code?: string } | undefined)?.code]
    const missing = "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert.deepStrictEqual(codeOf(TlsPolicy.unverified(socket({ authorized: false, cert: null }), "require")), [
      `client certificate refused: ${missing}`,
      missing
    ])
    // Node gives an empty object when the client sent none.
    assert.deepStrictEqual(codeOf(TlsPolicy.unverified(socket({ authorized: false, cert: {} }), "require")), [
      `client certificate refused: ${missing}`,
      missing
    ])
    const untrusted = socket({ authorized: false, cert, authorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
    assert.deepStrictEqual(codeOf(TlsPolicy.unverified(untrusted, "require")), [
      "client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    ])
    assert.deepStrictEqual(codeOf(TlsPolicy.unverified(socket({ authorized: false, cert }), "require")), [
      "client certificate refused: CERTIFICATE_VERIFY_FAILED",
      "CERTIFICATE_VERIFY_FAILED"
    ])
  })

  it("maps every known handshake error to its reason, by code or by message", () => {
    const cases: ReadonlyArray<readonly [unknown, TlsPolicy.Reason]> = [
      [withCode("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION"), "protocol_version"],
      [withCode("ERR_SSL_UNSUPPORTED_PROTOCOL"), "protocol_version"],
      [withCode("ERR_SSL_VERSION_TOO_LOW"), "protocol_version"],
      [withCode("ERR_SSL_NO_PROTOCOLS_AVAILABLE"), "protocol_version"],
      [withCode("ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"), "no_certificate"],
      [withCode("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"), "no_certificate"],
      [withCode("ERR_SSL_SSLV3_ALERT_NO_CERTIFICATE"), "no_certificate"],
      [withCode("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "unknown_ca"],
      [withCode("UNABLE_TO_GET_ISSUER_CERT"), "unknown_ca"],
      [withCode("DEPTH_ZERO_SELF_SIGNED_CERT"), "unknown_ca"],
      [withCode("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "unknown_ca"],
      [withCode("CERT_HAS_EXPIRED"), "certificate_expired"],
      [withCode("ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED"), "certificate_expired"],
      [withCode("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"), "bad_certificate"],
      [withCode("CERTIFICATE_VERIFY_FAILED"), "bad_certificate"],
      [withCode("ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN"), "bad_certificate"],
      [withCode("ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"), "bad_certificate"],
      [withCode("CERT_SIGNATURE_FAILURE"), "bad_certificate"],
      [withCode("CERT_REJECTED"), "bad_certificate"],
      [withCode("INVALID_PURPOSE"), "bad_certificate"],
      [withCode("CERT_NOT_YET_VALID"), "bad_certificate"],
      [withCode("ERR_SSL_NO_SHARED_CIPHER"), "no_shared_cipher"],
      [withCode("ERR_SSL_NO_CIPHERS_AVAILABLE"), "no_shared_cipher"],
      [withCode("ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"), "no_shared_cipher"],
      [withCode("ERR_SSL_WRONG_VERSION_NUMBER"), "not_tls"],
      [withCode("ERR_SSL_HTTP_REQUEST"), "not_tls"],
      [withCode("ERR_SSL_PACKET_LENGTH_TOO_LONG"), "not_tls"],
      [withCode("ERR_SSL_RECORD_LAYER_FAILURE"), "not_tls"],
      [withCode("ECONNRESET"), "reset"],
      [withCode("EPIPE"), "reset"],
      [withCode("ERR_TLS_HANDSHAKE_TIMEOUT"), "timeout"],
      // Without a code, the message decides; lower case counts too.
      [new Error("socket hang up"), "reset"],
      [new Error("Client network socket disconnected before secure TLS connection was established"), "reset"],
      [new Error("tls handshake timeout"), "timeout"],
      ["ECONNRESET", "reset"],
      [withCode("ERR_SOMETHING_NEW"), "other"],
      [new Error("nothing known"), "other"],
      [undefined, "other"],
      [{ code: 42 }, "other"]
    ]
    for (const [error, reason] of cases) assert.strictEqual(TlsPolicy.reasonOf(error), reason, String(error))
    assert.deepStrictEqual(TlsPolicy.clientAuths, ["none", "request", "require"])
  })

  it.effect("counts each failure under its reason, and warns naming the listener, the peer and the code", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      let where = "127.0.0.1:0"
      const failed = yield* TlsPolicy.handshakeFailures(() => where)
      where = "127.0.0.1:6263"
      failed(withCode("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "10.0.0.1:5000")
      failed(new Error("socket hang up"), undefined)
      failed(withCode("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"), "10.0.0.2:5000")
      const text = yield* PrometheusMetrics.format()
      assert.include(
        text,
        "# HELP pool_tls_handshake_failures_total TLS handshakes that failed, by reason (TLS alert or error)"
      )
      assert.include(text, 'pool_tls_handshake_failures_total{reason="unknown_ca"} 2')
      assert.include(text, 'pool_tls_handshake_failures_total{reason="reset"} 1')
      assert.include(text, 'pool_tls_handshake_failures_total{reason="timeout"} 0')
      assert.deepStrictEqual(lines[0], {
        level: "Warn",
        message:
          "TLS handshake on 127.0.0.1:6263 failed from 10.0.0.1:5000: unknown_ca (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)",
        annotations: { tlsPeer: "10.0.0.1:5000", reason: "unknown_ca", code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" }
      })
      assert.deepStrictEqual(lines[1], {
        level: "Warn",
        message: "TLS handshake on 127.0.0.1:6263 failed from unknown: reset (socket hang up)",
        annotations: { tlsPeer: "unknown", reason: "reset", code: "" }
      })
    }).pipe(Effect.scoped, Effect.provide(capturingLogs(lines)))
  })

  it.effect("warns of the first few failures, then says how many more there were", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const scope = yield* Scope.make()
      const failed = yield* Scope.provide(
        TlsPolicy.handshakeFailures(() => "127.0.0.1:6263"),
        scope
      )
      for (let i = 0; i < 8; i++) failed(withCode("ECONNRESET"), `10.0.0.${i}:5000`)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(
        lines.map((line) => line.message),
        [
          ...[0, 1, 2, 3, 4].map(
            (i) => `TLS handshake on 127.0.0.1:6263 failed from 10.0.0.${i}:5000: reset (ECONNRESET)`
          ),
          "TLS handshake failures: 3 more like this not logged in the last 10s (the metrics count every one)"
        ]
      )
    }).pipe(Effect.provide(capturingLogs(lines)))
  })

  it.effect("the counter's series exist while its scope is open, each value from 0", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* Scope.provide(
        TlsPolicy.handshakeFailures(() => "127.0.0.1:0"),
        scope
      )
      const open = yield* PrometheusMetrics.format()
      for (const reason of TlsPolicy.reasons) {
        assert.include(open, `pool_tls_handshake_failures_total{reason="${reason}"} 0`)
      }
      yield* Scope.close(scope, Exit.void)
      assert.notInclude(yield* PrometheusMetrics.format(), "pool_tls_handshake_failures_total")
    })
  )
})
