/**
 * `NodeProxyProtocol.parse` in words and in whole: the problem and the detail
 * (what the log line tells an operator) of every way a header can be wrong,
 * the bytes at the edges of what is allowed, and every field of the headers
 * it returns. NodeProxyProtocol.test.ts has the property tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeProxyProtocol } from "../src/index.ts"
import { inet4, v2 } from "./utils/proxyHeaders.ts"

const { parse } = NodeProxyProtocol

const ascii = (text: string) => Buffer.from(text, "latin1")
const rejection = (bytes: Uint8Array, max?: number) => {
  const result = parse(bytes, max)
  return result._tag === "Invalid" ? `${result.problem}: ${result.detail}` : result._tag
}
const header = (bytes: Uint8Array, max?: number) => {
  const result = parse(bytes, max)
  if (result._tag !== "Parsed") assert.fail(`expected a header, got ${JSON.stringify(result)}`)
  return result.header
}

const addresses = inet4([1, 2, 3, 4], [5, 6, 7, 8], [1000, 2000])

describe("NodeProxyProtocol details", () => {
  it("says what is wrong with a version 1 line", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["GET / HTTP/1.1\r\n", "missing: the connection did not start with a PROXY protocol header"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "malformed: a v1 header line must end with CRLF"],
      ["PROXY TCP4 1.2.3.4\rX", "malformed: a v1 header has a CR without LF"],
      ["PROXY TCP4 1.2.3.4\u0001", "malformed: a v1 header must be printable ASCII"],
      ["PROXY TCP4 1.2.3.4\u001f", "malformed: a v1 header must be printable ASCII"],
      ["PROXY TCP4 1.2.3.4\u007f", "malformed: a v1 header must be printable ASCII"],
      [`PROXY UNKNOWN ${"x".repeat(92)}\r\n`, "oversized: a v1 header line is at most 107 bytes"],
      [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "malformed: a v1 header must be PROXY TCP4|TCP6 source destination sport dport, or PROXY UNKNOWN"
      ],
      [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "malformed: a v1 header must be PROXY TCP4|TCP6 source destination sport dport, or PROXY UNKNOWN"
      ],
      [
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "malformed: a v1 header must be PROXY TCP4|TCP6 source destination sport dport, or PROXY UNKNOWN"
      ],
      ["PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "malformed: a v1 TCP4 header has a bad address"],
      ["PROXY TCP6 ::1 1.2.3.4 1 2\r\n", "malformed: a v1 TCP6 header has a bad address"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "malformed: a v1 header has a bad port"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n", "malformed: a v1 header has a bad port"]
    ]
    for (const [text, expected] of cases) assert.strictEqual(rejection(ascii(text)), expected, JSON.stringify(text))
    // 107 bytes without CRLF: too long already, not waiting for more.
    assert.strictEqual(
      rejection(ascii(`PROXY UNKNOWN ${"x".repeat(93)}`)),
      "oversized: a v1 header line is at most 107 bytes"
    )
    assert.strictEqual(rejection(ascii(`PROXY UNKNOWN ${"x".repeat(92)}`)), "Incomplete")
    // 107 bytes without CRLF, then a lone LF: the line was too long before the LF.
    assert.strictEqual(
      rejection(ascii(`PROXY UNKNOWN ${"x".repeat(93)}\n`)),
      "oversized: a v1 header line is at most 107 bytes"
    )
    // The edges: `~` is printable; a CR at the end waits for its LF; a signature's prefix waits.
    assert.strictEqual(header(ascii("PROXY UNKNOWN ~\r\n")).length, 17)
    assert.strictEqual(rejection(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r")), "Incomplete")
    assert.strictEqual(rejection(ascii("PROX")), "Incomplete")
    assert.strictEqual(rejection(ascii("PROXY ")), "Incomplete")
    assert.strictEqual(rejection(new Uint8Array(0)), "Incomplete")
  })

  it("says what is wrong with a version 2 header", () => {
    const unknownFamily = v2({ family: 4, addresses })
    const unknownTransport = v2({ family: 1, transport: 3, addresses })
    const tooShort = v2({ family: 2, addresses })
    const cases: ReadonlyArray<readonly [Uint8Array, string]> = [
      [v2({ version: 1, family: 1, addresses }), "malformed: a v2 header must have version 2"],
      [v2({ command: 2, family: 1, addresses }), "malformed: a v2 header's command must be LOCAL or PROXY"],
      [unknownFamily, "malformed: a v2 header has an unknown address family"],
      [unknownTransport, "malformed: a v2 header has an unknown address family"],
      [tooShort, "malformed: a v2 header is too short for its addresses"]
    ]
    for (const [bytes, expected] of cases) assert.strictEqual(rejection(bytes), expected)
    const big = v2({ family: 1, addresses, tlvs: [{ type: 1, value: new Uint8Array(100) }] })
    assert.strictEqual(
      rejection(big, big.length - 1),
      `oversized: a v2 header of ${big.length} bytes is over the limit of ${big.length - 1}`
    )
    // At the limit exactly: accepted.
    assert.strictEqual(header(big, big.length).length, big.length)
    const runsPast = v2({ family: 1, addresses, tlvs: [{ type: 0x20, value: new Uint8Array(4) }] })
    runsPast.writeUInt16BE(9, 16 + 12 + 1)
    assert.strictEqual(rejection(runsPast), "malformed: a v2 TLV runs past the header")
    const endsInside = Buffer.concat([v2({ family: 1, addresses }), Buffer.from([1, 0])])
    endsInside.writeUInt16BE(14, 14)
    assert.strictEqual(rejection(endsInside), "malformed: a v2 header ends inside a TLV")
    // Datagrams (transport 2) are a known transport.
    assert.strictEqual(header(v2({ family: 1, transport: 2, addresses })).transport, "DGRAM")
  })

  it("returns every field of the header", () => {
    assert.deepStrictEqual(header(ascii("PROXY TCP4 192.0.2.1 198.51.100.1 5000 80\r\nrest")), {
      version: 1,
      command: "PROXY",
      family: "TCP4",
      transport: "STREAM",
      source: { address: "192.0.2.1", port: 5000 },
      destination: { address: "198.51.100.1", port: 80 },
      tlvs: [],
      length: 43
    })
    assert.deepStrictEqual(header(ascii("PROXY UNKNOWN whatever\r\n")), {
      version: 1,
      command: "PROXY",
      family: "UNKNOWN",
      transport: "UNSPEC",
      source: undefined,
      destination: undefined,
      tlvs: [],
      length: 24
    })
    const tlv = { type: 0x02, value: Uint8Array.from([0x61, 0x62]) }
    const local = header(v2({ command: 0, family: 1, addresses, tlvs: [tlv] }))
    assert.deepStrictEqual(
      { ...local, tlvs: local.tlvs.map((each) => ({ type: each.type, value: Array.from(each.value) })) },
      {
        version: 2,
        command: "LOCAL",
        family: "TCP4",
        transport: "STREAM",
        source: { address: "1.2.3.4", port: 1000 },
        destination: { address: "5.6.7.8", port: 2000 },
        tlvs: [{ type: 2, value: [0x61, 0x62] }],
        length: 16 + 12 + 5
      }
    )
    const unspec = header(v2({ command: 1, family: 0, transport: 0, addresses: new Uint8Array(0) }))
    assert.deepStrictEqual(
      [unspec.command, unspec.family, unspec.transport, unspec.source, unspec.destination],
      ["PROXY", "UNKNOWN", "UNSPEC", undefined, undefined]
    )
    // Unix paths: NUL-terminated, or the whole 108 bytes; an empty one is "".
    const full = "p".repeat(108)
    const unix = header(v2({ family: 3, addresses: Buffer.concat([Buffer.from(full), Buffer.alloc(108)]) }))
    assert.deepStrictEqual(
      [unix.source, unix.destination],
      [
        { address: full, port: 0 },
        { address: "", port: 0 }
      ]
    )
  })
})
