/**
 * The PROXY protocol header parser (HAProxy's specification, versions 1 and
 * 2), incremental: fed the bytes received so far, it answers that more are
 * needed, that the header is complete (and how long it was), or why the bytes
 * can never become a valid header. Pure and allocation-light: it never throws,
 * whatever the bytes.
 */
import * as Net from "node:net"
// The types are the public module's; this one only implements them.
import type { Endpoint, Header, Result, Tlv } from "../NodeProxyProtocol.ts"

/** Why bytes cannot be a header: no signature, a broken one, or too long. */
export type Problem = Extract<Result, { readonly _tag: "Invalid" }>["problem"]

/** The version 1 line's longest length, CRLF included (the specification's 107). */
export const v1MaxLength = 107

/** The 12 bytes that open a version 2 header. */
export const v2Signature: Uint8Array = Uint8Array.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
])

const v1Signature = Uint8Array.from([0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]) // "PROXY "

const incomplete: Result = { _tag: "Incomplete" }
const invalid = (problem: Problem, detail: string): Result => ({ _tag: "Invalid", problem, detail })

// Whether the first bytes of `bytes` agree with `signature` (as far as both go).
const agrees = (bytes: Uint8Array, signature: Uint8Array): boolean => {
  const length = Math.min(bytes.length, signature.length)
  for (let i = 0; i < length; i++) if (bytes[i] !== signature[i]) return false
  return true
}

/**
 * Parses the header at the start of `bytes`. `maxLength` bounds a version 2
 * header (16 fixed bytes plus its addresses and TLVs); a version 1 line is
 * always bounded by 107 bytes.
 */
export const parse = (bytes: Uint8Array, maxLength: number): Result => {
  if (bytes.length === 0) return incomplete
  if (agrees(bytes, v2Signature)) return bytes.length < 16 ? incomplete : parseV2(bytes, maxLength)
  if (agrees(bytes, v1Signature)) return bytes.length < v1Signature.length ? incomplete : parseV1(bytes)
  return invalid("missing", "the connection did not start with a PROXY protocol header")
}

const port = (text: string | undefined): number | undefined =>
  text !== undefined && /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined

const parseV1 = (bytes: Uint8Array): Result => {
  const limit = Math.min(bytes.length, v1MaxLength)
  let end = -1
  for (let i = v1Signature.length; i < limit; i++) {
    if (bytes[i] === 0x0a) return invalid("malformed", "a v1 header line must end with CRLF")
    if (bytes[i] === 0x0d) {
      if (i + 1 >= bytes.length) return incomplete
      if (bytes[i + 1] !== 0x0a) return invalid("malformed", "a v1 header has a CR without LF")
      end = i
      break
    }
    // Printable US-ASCII only: the line is text.
    if (bytes[i]! < 0x20 || bytes[i]! > 0x7e) return invalid("malformed", "a v1 header must be printable ASCII")
  }
  if (end + 2 > v1MaxLength || (end < 0 && bytes.length >= v1MaxLength)) {
    return invalid("oversized", `a v1 header line is at most ${v1MaxLength} bytes`)
  }
  if (end < 0) return incomplete
  const line = String.fromCharCode(...bytes.subarray(v1Signature.length, end))
  const length = end + 2
  const fields = line.split(" ")
  if (fields[0] === "UNKNOWN") {
    // The specification: whatever follows UNKNOWN is ignored.
    return parsed(1, "PROXY", "UNKNOWN", "UNSPEC", undefined, undefined, [], length)
  }
  if (fields.length !== 5 || (fields[0] !== "TCP4" && fields[0] !== "TCP6")) {
    return invalid("malformed", "a v1 header must be PROXY TCP4|TCP6 source destination sport dport, or PROXY UNKNOWN")
  }
  const family = fields[0]
  const valid = family === "TCP4" ? Net.isIPv4 : Net.isIPv6
  const sourcePort = port(fields[3])
  const destinationPort = port(fields[4])
  if (!valid(fields[1]!) || !valid(fields[2]!)) return invalid("malformed", `a v1 ${family} header has a bad address`)
  if (sourcePort === undefined || destinationPort === undefined) {
    return invalid("malformed", "a v1 header has a bad port")
  }
  return parsed(
    1,
    "PROXY",
    family,
    "STREAM",
    { address: fields[1]!, port: sourcePort },
    { address: fields[2]!, port: destinationPort },
    [],
    length
  )
}

const parsed = (
  version: 1 | 2,
  command: Header["command"],
  family: Header["family"],
  transport: Header["transport"],
  source: Endpoint | undefined,
  destination: Endpoint | undefined,
  tlvs: ReadonlyArray<Tlv>,
  length: number
): Result => ({
  _tag: "Parsed",
  header: { version, command, family, transport, source, destination, tlvs, length }
})

const families = ["UNKNOWN", "TCP4", "TCP6", "UNIX"] as const
const transports = ["UNSPEC", "STREAM", "DGRAM"] as const
// Bytes of the address block each family needs (AF_UNSPEC none).
const addressBytes = [0, 12, 36, 216] as const

const parseV2 = (bytes: Uint8Array, maxLength: number): Result => {
  const versionCommand = bytes[12]!
  if (versionCommand >> 4 !== 2) return invalid("malformed", "a v2 header must have version 2")
  const commandBits = versionCommand & 0x0f
  if (commandBits > 1) return invalid("malformed", "a v2 header's command must be LOCAL or PROXY")
  const familyBits = bytes[13]! >> 4
  const transportBits = bytes[13]! & 0x0f
  if (familyBits > 3 || transportBits > 2) return invalid("malformed", "a v2 header has an unknown address family")
  const length = 16 + ((bytes[14]! << 8) | bytes[15]!)
  if (length > maxLength)
    return invalid("oversized", `a v2 header of ${length} bytes is over the limit of ${maxLength}`)
  const needed = addressBytes[familyBits]!
  if (length - 16 < needed) return invalid("malformed", "a v2 header is too short for its addresses")
  if (bytes.length < length) return incomplete
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  const tlvs: Array<Tlv> = []
  for (let at = 16 + needed; at < length; ) {
    if (at + 3 > length) return invalid("malformed", "a v2 header ends inside a TLV")
    const size = view.getUint16(at + 1)
    if (at + 3 + size > length) return invalid("malformed", "a v2 TLV runs past the header")
    tlvs.push({ type: bytes[at]!, value: bytes.slice(at + 3, at + 3 + size) })
    at += 3 + size
  }
  const command = commandBits === 0 ? "LOCAL" : "PROXY"
  const family = families[familyBits]!
  const transport = transports[transportBits]!
  const [source, destination] = endpoints(family, bytes, view)
  return parsed(2, command, family, transport, source, destination, tlvs, length)
}

const endpoints = (
  family: Header["family"],
  bytes: Uint8Array,
  view: DataView
): readonly [Endpoint | undefined, Endpoint | undefined] => {
  switch (family) {
    case "TCP4":
      return [
        { address: bytes.subarray(16, 20).join("."), port: view.getUint16(24) },
        { address: bytes.subarray(20, 24).join("."), port: view.getUint16(26) }
      ]
    case "TCP6":
      return [
        { address: formatIpv6(view, 16), port: view.getUint16(48) },
        { address: formatIpv6(view, 32), port: view.getUint16(50) }
      ]
    case "UNIX":
      return [
        { address: unixPath(bytes.subarray(16, 124)), port: 0 },
        { address: unixPath(bytes.subarray(124, 232)), port: 0 }
      ]
    case "UNKNOWN":
      return [undefined, undefined]
  }
}

const unixPath = (bytes: Uint8Array): string => {
  const end = bytes.indexOf(0)
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString("latin1")
}

/** 16 bytes at `offset` as the canonical IPv6 text (RFC 5952: lower case, longest zero run as `::`). */
export const formatIpv6 = (view: DataView, offset: number): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(offset + 2 * i))
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  // IPv4-mapped addresses as Node writes them, so per-address limits see one host.
  if (bestStart === 0 && bestLength === 5 && groups[5] === 0xffff) {
    const v4 = new Uint8Array(view.buffer, view.byteOffset + offset + 12, 4)
    return `::ffff:${v4.join(".")}`
  }
  const hex = groups.map((group) => group.toString(16))
  if (bestStart < 0) return hex.join(":")
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`
}
