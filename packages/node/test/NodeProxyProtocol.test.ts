import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect } from "effect"
import { NodeProxyProtocol } from "../src/index.ts"
import {
  byte,
  bytes,
  inet4,
  inet6,
  ipv4,
  ipv6,
  ipv6Random,
  ipv6Text,
  port,
  signature,
  type TestTlv,
  tlvs,
  v1,
  v2
} from "./utils/proxyHeaders.ts"

const { parse, clientOf } = NodeProxyProtocol

const bytesOf = (length: number) =>
  Arbitrary.map(Arbitrary.array(byte, { minLength: length, maxLength: length }), (values) => Uint8Array.from(values))

const parsed = (input: Uint8Array, max?: number) => {
  const result = parse(input, max)
  if (result._tag !== "Parsed") assert.fail(`expected a header, got ${JSON.stringify(result)}`)
  return result.header
}

const problem = (input: Uint8Array, max?: number) => {
  const result = parse(input, max)
  if (result._tag !== "Invalid") assert.fail(`expected an invalid header, got ${result._tag}`)
  return result.problem
}

/** Every strict prefix of a valid header needs more bytes; the header plus anything parses to the same length. */
const assertTruncations = (header: Uint8Array, trailer: Uint8Array) => {
  for (let i = 0; i < header.length; i++) {
    assert.strictEqual(parse(header.subarray(0, i))._tag, "Incomplete", `prefix of ${i} of ${header.length} bytes`)
  }
  assert.strictEqual(parsed(Buffer.concat([header, trailer])).length, header.length)
}

/** Invariants of any answer to any bytes. */
const assertSane = (input: Uint8Array) => {
  const result = parse(input)
  if (result._tag === "Parsed") {
    assert.isAtMost(result.header.length, input.length)
    // The header alone is the same header.
    assert.deepStrictEqual(parse(input.subarray(0, result.header.length)), result)
  } else if (result._tag === "Invalid") {
    assert.include(["missing", "malformed", "oversized"], result.problem)
    assert.isAbove(result.detail.length, 0)
  }
  return result
}

const fuzzRuns = { arbitrary: { runs: 300 } }

describe("NodeProxyProtocol.parse", () => {
  it.prop(
    "answers random bytes without throwing; bytes not opening like a header are `missing`",
    [bytes(300)],
    ([input]) => {
      const result = assertSane(input)
      if (input.length > 0 && input[0] !== 0x50 && input[0] !== 0x0d) assert.strictEqual(result._tag, "Invalid")
    },
    fuzzRuns
  )

  it.prop(
    "parses TCP4 in v1 and v2, whatever follows, and needs more bytes at every truncation",
    [ipv4, ipv4, port, port, tlvs, bytes(20)],
    ([source, destination, sourcePort, destinationPort, fields, trailer]) => {
      const sourceText = source.join(".")
      const line = v1("TCP4", [sourceText, destination.join("."), sourcePort, destinationPort])
      const binary = v2({
        family: 1,
        addresses: inet4(source, destination, [sourcePort, destinationPort]),
        tlvs: fields
      })
      for (const header of [line, binary]) {
        assertTruncations(header, trailer)
        const parsedHeader = parsed(header)
        assert.strictEqual(parsedHeader.family, "TCP4")
        assert.deepStrictEqual(parsedHeader.destination, { address: destination.join("."), port: destinationPort })
        assert.deepStrictEqual(clientOf(parsedHeader), {
          remoteAddress: `${sourceText}:${sourcePort}`,
          remoteHost: sourceText
        })
      }
      assert.deepStrictEqual(parsed(binary).tlvs.map(copyTlv), fields.map(copyTlv))
    },
    fuzzRuns
  )

  it.prop(
    "parses TCP6 in v1 and v2 to the canonical address text",
    [ipv6, ipv6Random, port, port, tlvs],
    ([source, destination, sourcePort, destinationPort, fields]) => {
      const sourceText = ipv6Text(source)
      const binary = v2({
        family: 2,
        addresses: inet6(source, destination, [sourcePort, destinationPort]),
        tlvs: fields
      })
      const line = v1("TCP6", [sourceText, ipv6Text(destination), sourcePort, destinationPort])
      for (const header of [line, binary]) {
        assertTruncations(header, Buffer.from("HI"))
        const parsedHeader = parsed(header)
        assert.strictEqual(parsedHeader.family, "TCP6")
        assert.deepStrictEqual(parsedHeader.source, { address: sourceText, port: sourcePort })
        assert.deepStrictEqual(parsedHeader.destination, { address: ipv6Text(destination), port: destinationPort })
        assert.deepStrictEqual(clientOf(parsedHeader), {
          remoteAddress: `[${sourceText}]:${sourcePort}`,
          remoteHost: sourceText
        })
      }
      assert.deepStrictEqual(parsed(binary).tlvs.map(copyTlv), fields.map(copyTlv))
    },
    fuzzRuns
  )

  it.prop(
    "rejects, never throws on, v2 headers with random bytes after the fixed part",
    [Arbitrary.all({ verCmd: bytesOf(1), famLen: bytesOf(3), body: bytes(260) })],
    ([{ verCmd, famLen, body }]) => {
      assertSane(Buffer.concat([signature, verCmd, famLen, body]))
    },
    fuzzRuns
  )

  it.prop(
    "never throws on random text after `PROXY `",
    [bytes(120)],
    ([tail]) => {
      assertSane(Buffer.concat([Buffer.from("PROXY "), tail]))
      assertSane(Buffer.concat([Buffer.from("PROXY TCP4 "), tail]))
    },
    fuzzRuns
  )

  it.effect("UNKNOWN and LOCAL keep the real endpoints", () =>
    Effect.sync(() => {
      const unknown = parsed(v1("UNKNOWN", ["ffff::1", "garbage", "is", "ignored"]))
      assert.strictEqual(unknown.family, "UNKNOWN")
      assert.isUndefined(clientOf(unknown))
      assert.isUndefined(clientOf(parsed(Buffer.from("PROXY UNKNOWN\r\n"))))
      const local = parsed(v2({ command: 0, family: 1, addresses: inet4([10, 0, 0, 1], [10, 0, 0, 2], [1, 2]) }))
      assert.strictEqual(local.command, "LOCAL")
      assert.isUndefined(clientOf(local))
      const unspec = parsed(v2({ command: 1, family: 0, transport: 0, addresses: new Uint8Array(0) }))
      assert.strictEqual(unspec.family, "UNKNOWN")
      assert.isUndefined(clientOf(unspec))
      const unix = parsed(v2({ family: 3, addresses: Buffer.concat([Buffer.from("/run/a.sock"), Buffer.alloc(205)]) }))
      assert.deepStrictEqual(unix.source, { address: "/run/a.sock", port: 0 })
      assert.isUndefined(clientOf(unix))
    })
  )

  it.effect("names the problem of bad headers", () =>
    Effect.sync(() => {
      assert.strictEqual(problem(Buffer.from("GET / HTTP/1.1\r\n")), "missing")
      assert.strictEqual(problem(Buffer.from("PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP4 1.2.3.256 1.2.3.5 1 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP6 1.2.3.4 1.2.3.5 1 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n")), "malformed")
      assert.strictEqual(problem(Buffer.from("PROXY TCP4 1.2.3.4  1.2.3.5 1 2\r\n")), "malformed")
      assert.strictEqual(problem(Buffer.from(`PROXY UNKNOWN ${"x".repeat(120)}`)), "oversized")
      // 107 bytes is the longest line: the CRLF must have come by then.
      assert.strictEqual(problem(Buffer.from(`PROXY UNKNOWN ${"x".repeat(92)}\r\n`)), "oversized")
      assert.strictEqual(parsed(Buffer.from(`PROXY UNKNOWN ${"x".repeat(91)}\r\n`)).length, 107)
      const addresses = inet4([1, 2, 3, 4], [5, 6, 7, 8], [1, 2])
      assert.strictEqual(problem(v2({ version: 1, family: 1, addresses })), "malformed")
      assert.strictEqual(problem(v2({ command: 2, family: 1, addresses })), "malformed")
      assert.strictEqual(problem(v2({ family: 4, addresses })), "malformed")
      assert.strictEqual(problem(v2({ family: 2, addresses })), "malformed") // 12 bytes for INET6's 36
      assert.strictEqual(
        problem(v2({ family: 1, addresses, tlvs: [{ type: 1, value: new Uint8Array(5000) }] })),
        "oversized"
      )
      assert.strictEqual(
        parsed(v2({ family: 1, addresses, tlvs: [{ type: 1, value: new Uint8Array(5000) }] }), 8000).tlvs.length,
        1
      )
      // A TLV whose length runs past the header.
      const broken = v2({ family: 1, addresses, tlvs: [{ type: 0x20, value: new Uint8Array(4) }] })
      broken.writeUInt16BE(9, 16 + 12 + 1)
      assert.strictEqual(problem(broken), "malformed")
      // A header ending two bytes into a TLV.
      const short = Buffer.concat([v2({ family: 1, addresses }), Buffer.from([1, 0])])
      short.writeUInt16BE(14, 14)
      assert.strictEqual(problem(short), "malformed")
    })
  )
})

describe("NodeProxyProtocol.trustMatcher", () => {
  it.effect("matches CIDRs and single addresses, IPv4-mapped included, and rejects bad entries", () =>
    Effect.gen(function* () {
      const trusted = yield* NodeProxyProtocol.trustMatcher(["10.1.0.0/16", "192.0.2.7", "fd00::/8"])
      assert.isTrue(trusted("10.1.200.3"))
      assert.isTrue(trusted("::ffff:10.1.0.1"))
      assert.isTrue(trusted("192.0.2.7"))
      assert.isFalse(trusted("192.0.2.8"))
      assert.isTrue(trusted("fd12::1"))
      assert.isFalse(trusted("fe80::1"))
      assert.isFalse(trusted(undefined))
      const loopback = yield* NodeProxyProtocol.trustMatcher(NodeProxyProtocol.defaultTrustedProxies)
      assert.isTrue(loopback("127.0.0.3"))
      assert.isTrue(loopback("::1"))
      assert.isFalse(loopback("10.0.0.1"))
      for (const entry of ["10.0.0.0/33", "10.0.0/8", "host.example", "::1/129", "1.2.3.4/8/1", "1.2.3.4/x"]) {
        const error = yield* Effect.flip(NodeProxyProtocol.trustMatcher([entry]))
        assert.include(error.message, entry)
        assert.strictEqual(NodeProxyProtocol.invalidTrustedProxy(["127.0.0.1", entry]), entry)
      }
    })
  )
})

const copyTlv = (tlv: TestTlv) => ({ type: tlv.type, value: Array.from(tlv.value) })
