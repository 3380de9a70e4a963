/**
 * The memcached command-line parser on its own: each command's fields,
 * token counts (too few or too many is `ERROR`, as memcached answers),
 * `noreply` only as the last token, the number ranges (32-bit flags, signed
 * 32-bit times and lengths, 64-bit cas uniques and deltas), and keys.
 */
import { assert, describe, it } from "@effect/vitest"
import { isValidKey, parseCommand, parseI32, parseU32, parseU64 } from "../../src/internal/memcachedParser.ts"

const invalid = (reply: string, noreply = false) => ({ _tag: "Invalid" as const, reply, noreply })
const ERROR = invalid("ERROR")
const badFormat = "CLIENT_ERROR bad command line format"

describe("memcached parser", () => {
  it("parses storage commands, with cas's unique and an optional noreply", () => {
    assert.deepStrictEqual(parseCommand("set k 5 -1 10"), {
      _tag: "Store",
      op: "set",
      key: "k",
      flags: 5,
      exptime: -1,
      bytes: 10,
      cas: 0n,
      noreply: false
    })
    assert.deepStrictEqual(parseCommand("cas k 0 0 1 18446744073709551615 noreply"), {
      _tag: "Store",
      op: "cas",
      key: "k",
      flags: 0,
      exptime: 0,
      bytes: 1,
      cas: 18446744073709551615n,
      noreply: true
    })
    // A sixth token other than noreply is ignored, as memcached does.
    assert.strictEqual((parseCommand("append k 0 0 1 whatever") as { noreply: boolean }).noreply, false)
    for (const op of ["set", "add", "replace", "append", "prepend"]) {
      assert.strictEqual(parseCommand(`${op} k 0 0 1`)._tag, "Store", op)
      assert.deepStrictEqual(parseCommand(`${op} k 0 0`), ERROR, op)
      assert.deepStrictEqual(parseCommand(`${op} k 0 0 1 noreply extra`), ERROR, op)
    }
    assert.deepStrictEqual(parseCommand("cas k 0 0 1"), ERROR)
  })

  it("refuses bad numbers and keys in storage commands, keeping noreply", () => {
    for (const line of [
      "set k x 0 1",
      "set k 4294967296 0 1",
      "set k -1 0 1",
      "set k 0 0 -1",
      "set k 0 0 2147483646",
      "set k 0 0 1x",
      "cas k 0 0 1 -1",
      "cas k 0 0 1 18446744073709551616",
      `set ${"k".repeat(251)} 0 0 1`,
      "set k\x01 0 0 1"
    ])
      assert.deepStrictEqual(parseCommand(line), invalid(badFormat), line)
    assert.deepStrictEqual(parseCommand("set k x 0 1 noreply"), invalid(badFormat, true))
    // memcached reads numbers as strtoul does: a leading + is fine.
    assert.include(parseCommand("cas k +5 +0 +1 +7"), { flags: 5, exptime: 0, bytes: 1, cas: 7n })
    assert.include(parseCommand("set k 0 0 2147483645"), { _tag: "Store", bytes: 2147483645 })
    // A unix time after 2038 is fine.
    assert.include(parseCommand("set k 0 4000000000 1"), { _tag: "Store", exptime: 4000000000 })
    assert.deepStrictEqual(parseCommand("set k 0 99999999999999999999 1"), invalid(badFormat))
  })

  it("parses retrievals of one or more keys, gat and gats with an expiration time first", () => {
    assert.deepStrictEqual(parseCommand("get a b c"), {
      _tag: "Retrieve",
      op: "get",
      keys: ["a", "b", "c"],
      exptime: undefined
    })
    assert.deepStrictEqual(parseCommand("gats -5 a"), { _tag: "Retrieve", op: "gats", keys: ["a"], exptime: -5 })
    // noreply is a key for a retrieval.
    assert.deepStrictEqual(parseCommand("gets noreply"), {
      _tag: "Retrieve",
      op: "gets",
      keys: ["noreply"],
      exptime: undefined
    })
    assert.deepStrictEqual(parseCommand("get"), ERROR)
    assert.deepStrictEqual(parseCommand("gat x a"), invalid("CLIENT_ERROR invalid exptime argument"))
    assert.deepStrictEqual(parseCommand(`get a ${"k".repeat(251)}`), invalid(badFormat))
  })

  it("splits on runs of spaces only, and command names are case-sensitive", () => {
    assert.deepStrictEqual(parseCommand("  get   a  b "), {
      _tag: "Retrieve",
      op: "get",
      keys: ["a", "b"],
      exptime: undefined
    })
    assert.deepStrictEqual(parseCommand("get a\tb"), invalid(badFormat))
    assert.deepStrictEqual(parseCommand("GET a"), ERROR)
    assert.deepStrictEqual(parseCommand(""), ERROR)
    assert.deepStrictEqual(parseCommand("   "), ERROR)
  })

  it("parses the other commands and their noreply", () => {
    assert.deepStrictEqual(parseCommand("delete k"), { _tag: "Delete", key: "k", noreply: false })
    assert.deepStrictEqual(parseCommand("delete k 0 noreply"), { _tag: "Delete", key: "k", noreply: true })
    assert.deepStrictEqual(
      parseCommand("delete k 1"),
      invalid("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
    )
    assert.deepStrictEqual(parseCommand("incr k 18446744073709551615 noreply"), {
      _tag: "Arithmetic",
      op: "incr",
      key: "k",
      delta: 18446744073709551615n,
      noreply: true
    })
    assert.deepStrictEqual(parseCommand("decr k -1"), invalid("CLIENT_ERROR invalid numeric delta argument"))
    assert.deepStrictEqual(parseCommand("touch k 10"), { _tag: "Touch", key: "k", exptime: 10, noreply: false })
    assert.deepStrictEqual(parseCommand("flush_all"), { _tag: "FlushAll", delay: 0, noreply: false })
    assert.deepStrictEqual(parseCommand("flush_all noreply"), { _tag: "FlushAll", delay: 0, noreply: true })
    assert.deepStrictEqual(parseCommand("flush_all 60 noreply"), { _tag: "FlushAll", delay: 60, noreply: true })
    assert.deepStrictEqual(parseCommand("flush_all x"), invalid("CLIENT_ERROR invalid exptime argument"))
    assert.deepStrictEqual(parseCommand("verbosity 2 noreply"), { _tag: "Verbosity", level: 2, noreply: true })
    assert.deepStrictEqual(parseCommand("stats settings"), { _tag: "Stats", args: ["settings"] })
    assert.deepStrictEqual(parseCommand("version"), { _tag: "Version" })
    assert.deepStrictEqual(parseCommand("quit"), { _tag: "Quit" })
    for (const line of ["incr k", "touch k", "verbosity", "delete", "delete k 0 noreply x", "flush_all 1 2 3"])
      assert.deepStrictEqual(parseCommand(line), ERROR, line)
  })

  it("reads numbers in their ranges, and keys of 1 to 250 printable bytes", () => {
    assert.deepStrictEqual(
      [parseU32("4294967295"), parseU32("4294967296"), parseU32("-1"), parseU32("")],
      [4294967295, undefined, undefined, undefined]
    )
    assert.deepStrictEqual(
      [parseI32("-2147483648"), parseI32("2147483648"), parseI32("1.5")],
      [-2147483648, undefined, undefined]
    )
    assert.deepStrictEqual(
      [parseU64("18446744073709551615"), parseU64("18446744073709551616")],
      [18446744073709551615n, undefined]
    )
    assert.isTrue(isValidKey("k".repeat(250)))
    assert.isTrue(isValidKey("clé\xff~!"))
    for (const key of ["", "k".repeat(251), "a b", "a\tb", "a\x00", "a\x7f"]) assert.isFalse(isValidKey(key), key)
  })
})
