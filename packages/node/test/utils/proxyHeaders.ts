/**
 * PROXY protocol headers written the way balancers write them, for the tests:
 * the v1 text line and the v2 binary header (with TLVs), built independently
 * of the parser under test.
 */
import { Arbitrary, Schema } from "effect"

/** The v2 signature, as the specification spells it. */
export const signature = Buffer.from("\r\n\r\n\0\r\nQUIT\n", "latin1")

/** A v1 line: `PROXY TCP4 src dst sport dport\r\n` (or `PROXY UNKNOWN ...\r\n`). */
export const v1 = (family: string, rest: ReadonlyArray<string | number>): Buffer =>
  Buffer.from(`PROXY ${[family, ...rest].join(" ")}\r\n`, "latin1")

/** One v2 TLV. */
export interface TestTlv {
  readonly type: number
  readonly value: Uint8Array
}

/** Options of a v2 header: command and family nibbles, raw address block, TLVs. */
export interface V2 {
  readonly command?: number
  readonly version?: number
  readonly family: number
  readonly transport?: number
  readonly addresses: Uint8Array
  readonly tlvs?: ReadonlyArray<TestTlv>
}

/** A v2 header. */
export const v2 = (options: V2): Buffer => {
  const tlvs = (options.tlvs ?? []).map((tlv) => {
    const head = Buffer.alloc(3)
    head[0] = tlv.type
    head.writeUInt16BE(tlv.value.length, 1)
    return Buffer.concat([head, tlv.value])
  })
  const body = Buffer.concat([options.addresses, ...tlvs])
  const fixed = Buffer.alloc(4)
  fixed[0] = ((options.version ?? 2) << 4) | (options.command ?? 1)
  fixed[1] = (options.family << 4) | (options.transport ?? 1)
  fixed.writeUInt16BE(body.length, 2)
  return Buffer.concat([signature, fixed, body])
}

/** The INET address block: source, destination, ports. */
export const inet4 = (source: ReadonlyArray<number>, destination: ReadonlyArray<number>, ports: [number, number]) => {
  const block = Buffer.alloc(12)
  block.set(source, 0)
  block.set(destination, 4)
  block.writeUInt16BE(ports[0], 8)
  block.writeUInt16BE(ports[1], 10)
  return block
}

/** The INET6 address block from 8 groups each. */
export const inet6 = (source: ReadonlyArray<number>, destination: ReadonlyArray<number>, ports: [number, number]) => {
  const block = Buffer.alloc(36)
  for (let i = 0; i < 8; i++) {
    block.writeUInt16BE(source[i]!, 2 * i)
    block.writeUInt16BE(destination[i]!, 16 + 2 * i)
  }
  block.writeUInt16BE(ports[0], 32)
  block.writeUInt16BE(ports[1], 34)
  return block
}

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** A byte. */
export const byte = int(0, 255)
/** A port. */
export const port = int(0, 65535)
/** Up to `maxLength` random bytes. */
export const bytes = (maxLength: number) =>
  Arbitrary.map(Arbitrary.array(byte, { maxLength }), (values) => Uint8Array.from(values))
/** An IPv4 address as 4 bytes. */
export const ipv4 = Arbitrary.array(byte, { minLength: 4, maxLength: 4 })
/** An IPv6 address as 8 groups, zero-heavy so `::` compression is exercised. */
export const ipv6 = Arbitrary.array(
  Arbitrary.map(int(0, 3), (i) => [0, 0, 1, 0xffff][i]!),
  { minLength: 8, maxLength: 8 }
)
/** An IPv6 address as 8 random groups. */
export const ipv6Random = Arbitrary.array(port, { minLength: 8, maxLength: 8 })
/** Up to 5 TLVs of up to 40 bytes. */
export const tlvs = Arbitrary.array(Arbitrary.all({ type: byte, value: bytes(40) }), { maxLength: 5 })

/** The text of 8 groups as RFC 5952 writes it (WHATWG's URL host serializer does). */
export const ipv6Text = (groups: ReadonlyArray<number>): string => {
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `::ffff:${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`
  }
  const text = groups.map((group) => group.toString(16)).join(":")
  return new URL(`http://[${text}]/`).hostname.slice(1, -1)
}
