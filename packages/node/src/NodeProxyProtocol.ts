/**
 * The PROXY protocol (versions 1 and 2), as sent by HAProxy (`send-proxy`,
 * `send-proxy-v2`), nginx (`proxy_protocol on`) and cloud L4 balancers: a
 * header before the client's bytes that names the client, so a server behind
 * a balancer sees its real clients instead of the balancer.
 *
 * `parse` is the header parser (incremental, never throws). `makeGate` is
 * what `NodeTcpServer` runs on every accepted socket when `proxyProtocol` is
 * on: it closes connections from outside `trustedProxies` at once, reads the
 * header under a timeout, and hands over the client's address; a missing,
 * malformed, oversized or late header closes the connection before it reaches
 * the pool, with a log line and a count in
 * `pool_proxy_connections_rejected_total{reason}`.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as CountersBy from "./internal/countersBy.ts"
import * as LogRateLimit from "./internal/logRateLimit.ts"
import * as gate from "./internal/proxyGate.ts"
import * as internal from "./internal/proxyProtocol.ts"
import type * as NodeConnection from "./NodeConnection.ts"

/**
 * An address and port named by a header (for a UNIX family, the path and 0).
 *
 * @category models
 * @since 0.1.0
 */
export interface Endpoint {
  readonly address: string
  readonly port: number
}

/**
 * A version 2 type-length-value field (e.g. type 0x01 ALPN, 0x02 authority,
 * 0x20 SSL), raw.
 *
 * @category models
 * @since 0.1.0
 */
export interface Tlv {
  readonly type: number
  readonly value: Uint8Array
}

/**
 * A parsed header. With `command` `LOCAL` (a balancer's own health check) or a
 * `family` of `UNKNOWN` or `UNIX`, the specification says the connection's
 * real endpoints apply, and `clientOf` gives `undefined`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Header {
  readonly version: 1 | 2
  /** `LOCAL`: the proxy's own connection (health check); the real endpoints apply. */
  readonly command: "PROXY" | "LOCAL"
  /** `UNKNOWN`: v1 `UNKNOWN`, or v2 `AF_UNSPEC`; the real endpoints apply. */
  readonly family: "TCP4" | "TCP6" | "UNIX" | "UNKNOWN"
  readonly transport: "STREAM" | "DGRAM" | "UNSPEC"
  readonly source: Endpoint | undefined
  readonly destination: Endpoint | undefined
  readonly tlvs: ReadonlyArray<Tlv>
  /** Bytes the header took; what follows is the client's. */
  readonly length: number
}

/**
 * The parser's answer: `Incomplete` (more bytes needed), `Parsed` (with the
 * header's `length`: what follows is the client's) or `Invalid` with the
 * problem (`missing` signature, `malformed`, `oversized`).
 *
 * @category models
 * @since 0.1.0
 */
export type Result =
  | { readonly _tag: "Incomplete" }
  | { readonly _tag: "Parsed"; readonly header: Header }
  | {
      readonly _tag: "Invalid"
      readonly problem: "missing" | "malformed" | "oversized"
      readonly detail: string
    }

/**
 * Why the gate closed a connection: sent from outside `trustedProxies`, a
 * header missing, malformed or oversized, none complete within the timeout,
 * or the peer closed before sending one.
 *
 * @category models
 * @since 0.1.0
 */
export type RejectReason = "untrusted" | Extract<Result, { readonly _tag: "Invalid" }>["problem"] | "timeout" | "closed"

/**
 * Every `RejectReason`, in the order of the metric's series.
 *
 * @category models
 * @since 0.1.0
 */
export const rejectReasons: ReadonlyArray<RejectReason> = [
  "untrusted",
  "missing",
  "malformed",
  "oversized",
  "timeout",
  "closed"
]

/**
 * Options of the gate (`NodeTcpServer`'s `proxyProtocol` option).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** CIDRs (or single addresses) allowed to send a header (default loopback: 127.0.0.0/8 and ::1). */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /** How long the header may take to arrive (default 5 seconds). */
  readonly headerTimeout?: Duration.Input | undefined
  /** The longest version 2 header accepted, TLVs included (default 4096 bytes; version 1 is 107 at most). */
  readonly maxHeaderBytes?: number | undefined
}

/**
 * The trusted proxies of `Options` when none are given: loopback.
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultTrustedProxies: ReadonlyArray<string> = ["127.0.0.0/8", "::1/128"]

/**
 * The PROXY protocol cannot be configured as asked: a `trustedProxies` entry
 * is not an address or CIDR.
 *
 * @category errors
 * @since 0.1.0
 */
export class ProxyProtocolError extends Schema.TaggedError<ProxyProtocolError>()("ProxyProtocolError", {
  problem: Schema.String
}) {
  override get message(): string {
    return `cannot use the PROXY protocol: ${this.problem}`
  }
}

const badEntry = (entry: string) =>
  new ProxyProtocolError({
    problem: `invalid trusted proxy "${entry}": expected ${gate.expectedEntry}`
  })

/**
 * Parses the header at the start of `bytes`; `maxHeaderBytes` bounds a
 * version 2 header (default 4096).
 *
 * @example
 * ```ts
 * import { NodeProxyProtocol } from "@pool-manager/node"
 *
 * const result = NodeProxyProtocol.parse(new TextEncoder().encode("PROXY TCP4 192.0.2.1 192.0.2.2 5000 6263\r\nHI"))
 * if (result._tag === "Parsed") console.log(NodeProxyProtocol.clientOf(result.header)) // 192.0.2.1:5000
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (bytes: Uint8Array, maxHeaderBytes = 4096): Result => internal.parse(bytes, maxHeaderBytes)

/**
 * The client a header names, as a `Transport` shows it (`remoteAddress`
 * `192.0.2.1:5000` or `[2001:db8::1]:5000`, `remoteHost` the address), or
 * `undefined` when the connection's real endpoints apply (LOCAL, UNKNOWN,
 * UNIX).
 *
 * @category parsing
 * @since 0.1.0
 */
export const clientOf = (header: Header): Client | undefined => {
  if (header.command === "LOCAL" || header.source === undefined) return undefined
  if (header.family === "TCP4") {
    return { remoteAddress: `${header.source.address}:${header.source.port}`, remoteHost: header.source.address }
  }
  if (header.family === "TCP6") {
    return { remoteAddress: `[${header.source.address}]:${header.source.port}`, remoteHost: header.source.address }
  }
  return undefined
}

/**
 * A client's address as a connection shows it.
 *
 * @category models
 * @since 0.1.0
 */
export type Client = NodeConnection.Client

/**
 * The first of `entries` that is not an address or CIDR, if any: a check for
 * configuration (flags, files) before `makeGate` runs.
 *
 * @category parsing
 * @since 0.1.0
 */
export const invalidTrustedProxy = (entries: ReadonlyArray<string>): string | undefined => {
  const list = gate.blockList(entries)
  return typeof list === "string" ? list : undefined
}

/**
 * Parses `trustedProxies` entries (`10.0.0.0/8`, `192.0.2.7`, `fd00::/8`)
 * into a matcher of peer addresses (IPv4-mapped IPv6 addresses match their
 * IPv4 CIDRs).
 *
 * @category parsing
 * @since 0.1.0
 */
export const trustMatcher = (
  entries: ReadonlyArray<string>
): Effect.Effect<(address: string | undefined) => boolean, ProxyProtocolError> =>
  Effect.suspend(() => {
    const list = gate.blockList(entries)
    if (typeof list === "string") return Effect.fail(badEntry(list))
    return Effect.succeed((address: string | undefined) =>
      address === undefined ? false : list.check(address, Net.isIPv4(address) ? "ipv4" : "ipv6")
    )
  })

/**
 * The gate `NodeTcpServer` runs on each accepted socket.
 *
 * @category models
 * @since 0.1.0
 */
export interface Gate {
  /**
   * Reads the header from `socket`, then calls `onClient` with the client
   * (`undefined`: the real endpoints apply) and the socket paused, holding
   * any bytes after the header; or closes the socket, logs and counts why.
   */
  readonly admit: (socket: Net.Socket, onClient: (client: Client | undefined) => void) => void
  /** Connections closed so far, by reason. */
  readonly rejected: Effect.Effect<Readonly<Record<RejectReason, number>>>
}

/**
 * Makes a gate, registering `pool_proxy_connections_rejected_total{reason}`
 * in the context's metric registry until the scope closes.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeGate = (options: Options = {}): Effect.Effect<Gate, ProxyProtocolError, Scope.Scope> =>
  Effect.gen(function* () {
    const trusted = yield* trustMatcher(options.trustedProxies ?? defaultTrustedProxies)
    const timeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(options.headerTimeout ?? "5 seconds"))
    const maxHeaderBytes = options.maxHeaderBytes ?? 4096
    const counts = yield* CountersBy.make(
      "pool_proxy_connections_rejected_total",
      "Connections closed before the pool for their PROXY protocol header, by reason",
      "reason",
      rejectReasons
    )

    // One line per refused connection would flood the log under attack: a few per window, then a summary.
    const warn = yield* LogRateLimit.make({ kind: "PROXY protocol rejections" })
    const reject = (socket: Net.Socket, reason: RejectReason, detail: string) => {
      counts[reason]++
      const peer = socket.remoteAddress ?? "unknown"
      // An error the peer's reset may still raise must not go unhandled.
      socket.on("error", () => {})
      socket.destroy()
      warn(
        Effect.logWarning(`PROXY protocol: closed a connection from ${peer}: ${detail}`).pipe(
          Effect.annotateLogs({ proxyPeer: peer, reason })
        )
      )
    }

    const admit = (socket: Net.Socket, onClient: (client: Client | undefined) => void) => {
      if (!trusted(socket.remoteAddress)) return reject(socket, "untrusted", "the peer is not in the trusted proxies")
      gate.readHeader(socket, timeoutMillis, maxHeaderBytes, (outcome) =>
        outcome._tag === "Header" ? onClient(clientOf(outcome.header)) : reject(socket, outcome.reason, outcome.detail)
      )
    }

    return { admit, rejected: Effect.sync(() => ({ ...counts })) }
  })
