/**
 * The memcached command logic on its own, fed through the decoder as the
 * pool feeds it: every command's replies and errors byte for byte (checked
 * against memcached 1.6 where protocol.txt leaves them open), noreply,
 * expiration driven by a hand-moved clock, flush_all with a delay, the cas
 * uniques, incr/decr's 64-bit rules, the statistics and LRU eviction.
 */
import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import { Close, makeHandler } from "../../src/internal/memcachedCommands.ts"
import { makeDecoder } from "../../src/internal/memcachedDecoder.ts"
import { Store } from "../../src/internal/memcachedStore.ts"

const start = 1_700_000_000_000

const server = (options: { memoryLimit?: number; maxItemSize?: number } = {}) => {
  let now = start
  const store = new Store({ now: () => now, memoryLimit: options.memoryLimit ?? 1024 * 1024 })
  const handle = makeHandler(store, { maxItemSize: options.maxItemSize ?? 1024, version: "1.6.0-test", pid: 42 })
  const decoder = makeDecoder({ maxItemSize: options.maxItemSize ?? 1024, maxLineLength: 2048 })
  let closed = false
  /** Sends `text` (latin1) in one write and returns every reply, `<closed>` where the connection closed. */
  const send = (text: string): string => {
    assert.isFalse(closed, "the connection was closed")
    const { frames } = decoder.decode(Buffer.from(text, "latin1"))
    let replies = ""
    for (const frame of frames) {
      const outcome = handle(frame)
      if (outcome instanceof Close) {
        closed = true
        return `${replies}${outcome.reply ?? ""}<closed>`
      }
      if (outcome !== undefined) replies += Buffer.from(outcome).toString("latin1")
    }
    return replies
  }
  const advance = (seconds: number) => {
    now += seconds * 1000
  }
  return { send, advance, store }
}

const stat = (stats: string, name: string): string => {
  const match = new RegExp(`^STAT ${name} (.*)\\r$`, "m").exec(stats)
  assert.isNotNull(match, `no STAT ${name} in ${stats}`)
  return match![1]!
}

describe("memcached commands", () => {
  it("stores and retrieves: set, add, replace, append, prepend, get of several keys", () => {
    const { send } = server()
    assert.strictEqual(send("set a 5 0 3\r\nabc\r\n"), "STORED\r\n")
    assert.strictEqual(send("add a 0 0 1\r\nx\r\nadd b 0 0 1\r\nb\r\n"), "NOT_STORED\r\nSTORED\r\n")
    assert.strictEqual(send("replace c 0 0 1\r\nc\r\nreplace b 9 0 2\r\nbb\r\n"), "NOT_STORED\r\nSTORED\r\n")
    assert.strictEqual(send("append a 0 0 2\r\nde\r\nprepend a 7 0 2\r\n__\r\n"), "STORED\r\nSTORED\r\n")
    assert.strictEqual(send("append nope 0 0 1\r\nx\r\nprepend nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\nNOT_STORED\r\n")
    // append/prepend keep the item's flags; get answers the keys found, in order, then END.
    assert.strictEqual(send("get a nope b\r\n"), "VALUE a 5 7\r\n__abcde\r\nVALUE b 9 2\r\nbb\r\nEND\r\n")
    assert.strictEqual(send("get nope\r\n"), "END\r\n")
  })

  it("keeps any bytes: binary values, data blocks holding \\r\\n, empty values, high-byte keys", () => {
    const { send } = server()
    const binary = Buffer.from([0, 13, 10, 255, 128, 13, 10]).toString("latin1")
    assert.strictEqual(send(`set bin 0 0 7\r\n${binary}\r\nset empty 0 0 0\r\n\r\n`), "STORED\r\nSTORED\r\n")
    assert.strictEqual(send("get bin empty\r\n"), `VALUE bin 0 7\r\n${binary}\r\nVALUE empty 0 0\r\n\r\nEND\r\n`)
    assert.strictEqual(send("set clé\xff 0 0 1\r\nx\r\nget clé\xff\r\n"), "STORED\r\nVALUE clé\xff 0 1\r\nx\r\nEND\r\n")
  })

  it("gives 64-bit cas uniques with gets, and cas answers STORED, EXISTS or NOT_FOUND", () => {
    const { send, store } = server()
    send("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n")
    assert.strictEqual(send("gets a b\r\n"), "VALUE a 0 1 1\r\n1\r\nVALUE b 0 1 2\r\n2\r\nEND\r\n")
    assert.strictEqual(send("cas a 0 0 1 2\r\nx\r\n"), "EXISTS\r\n")
    assert.strictEqual(send("cas a 3 0 1 1\r\nx\r\n"), "STORED\r\n")
    assert.strictEqual(send("cas a 0 0 1 1\r\ny\r\n"), "EXISTS\r\n")
    assert.strictEqual(send("cas nope 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n")
    assert.strictEqual(send("gets a\r\n"), "VALUE a 3 1 3\r\nx\r\nEND\r\n")
    assert.strictEqual(send("cas a 0 0 1 18446744073709551615\r\nz\r\n"), "EXISTS\r\n")
    assert.strictEqual(
      send("cas a 0 0 1 18446744073709551616\r\nz\r\n"),
      "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    )
    assert.deepStrictEqual([store.counters.cas_hits, store.counters.cas_badval, store.counters.cas_misses], [1, 3, 1])
  })

  it("deletes, also in the legacy `delete <key> 0` form", () => {
    const { send } = server()
    send("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n")
    assert.strictEqual(send("delete a\r\ndelete a\r\ndelete b 0\r\n"), "DELETED\r\nNOT_FOUND\r\nDELETED\r\n")
    assert.strictEqual(
      send("delete b 5\r\n"),
      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    )
    assert.strictEqual(send("get a b\r\n"), "END\r\n")
  })

  it("increments and decrements 64-bit unsigned values: incr wraps, decr stops at 0", () => {
    const { send } = server()
    assert.strictEqual(send("incr n 1\r\ndecr n 1\r\n"), "NOT_FOUND\r\nNOT_FOUND\r\n")
    send("set n 3 0 2\r\n10\r\n")
    assert.strictEqual(send("incr n 5\r\ndecr n 6\r\n"), "15\r\n9\r\n")
    // A shorter result is padded with spaces in place, as memcached does; flags stay.
    assert.strictEqual(send("get n\r\n"), "VALUE n 3 2\r\n9 \r\nEND\r\n")
    assert.strictEqual(send("decr n 100\r\nincr n 18446744073709551615\r\n"), "0\r\n18446744073709551615\r\n")
    assert.strictEqual(send("incr n 2\r\n"), "1\r\n")
    assert.strictEqual(
      send("incr n abc\r\nincr n -1\r\nincr n 18446744073709551616\r\n"),
      "CLIENT_ERROR invalid numeric delta argument\r\n".repeat(3)
    )
    send("set s 0 0 3\r\n1a2\r\nset e 0 0 0\r\n\r\nset big 0 0 20\r\n18446744073709551616\r\nset sp 0 0 3\r\n 12\r\n")
    assert.strictEqual(
      send("incr s 1\r\nincr e 1\r\nincr big 1\r\n"),
      "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n".repeat(3)
    )
    assert.strictEqual(send("incr sp 1\r\n"), "13\r\n")
    // Leading zeros are not significant; 21 significant digits are too many.
    send(`set z 0 0 25\r\n${"0".repeat(24)}7\r\nset w 0 0 21\r\n${"1".repeat(21)}\r\n`)
    assert.strictEqual(
      send("incr z 1\r\nincr w 1\r\n"),
      "8\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    )
    // As strtoull reads it: a + first, and anything after whitespace ignored.
    send("set plus 0 0 3\r\n+12\r\nset tail 0 0 4\r\n12 a\r\nset minus 0 0 2\r\n-1\r\n")
    assert.strictEqual(
      send("incr plus 1\r\nincr tail 1\r\nincr minus 1\r\n"),
      "13\r\n13\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    )
  })

  it("expires items: relative seconds, 0 never, negative at once, over 30 days a unix time", () => {
    const { send, advance } = server()
    const absolute = Math.floor(start / 1000) + 100
    send(`set rel 0 10 1\r\nr\r\nset never 0 0 1\r\nn\r\nset gone 0 -1 1\r\ng\r\nset abs 0 ${absolute} 1\r\na\r\n`)
    assert.strictEqual(send("get gone\r\n"), "END\r\n")
    // An item set already expired leaves the key free: add succeeds.
    assert.strictEqual(send("add gone 0 0 1\r\nG\r\n"), "STORED\r\n")
    advance(9)
    assert.strictEqual(send("get rel abs\r\n"), "VALUE rel 0 1\r\nr\r\nVALUE abs 0 1\r\na\r\nEND\r\n")
    advance(1)
    assert.strictEqual(send("get rel abs never\r\n"), "VALUE abs 0 1\r\na\r\nVALUE never 0 1\r\nn\r\nEND\r\n")
    advance(90)
    assert.strictEqual(send("get abs never\r\n"), "VALUE never 0 1\r\nn\r\nEND\r\n")
    // An absolute time in the past is expired at once.
    assert.strictEqual(send(`set old 0 ${absolute - 1000} 1\r\no\r\nget old\r\n`), "STORED\r\nEND\r\n")
  })

  it("touches: touch, gat and gats set a new expiration time", () => {
    const { send, advance } = server()
    send("set a 1 5 1\r\na\r\nset b 2 5 1\r\nb\r\n")
    assert.strictEqual(send("touch a 100\r\ntouch nope 1\r\n"), "TOUCHED\r\nNOT_FOUND\r\n")
    assert.strictEqual(send("gat 100 b nope\r\n"), "VALUE b 2 1\r\nb\r\nEND\r\n")
    advance(50)
    assert.strictEqual(send("gats 0 a b\r\n"), "VALUE a 1 1 1\r\na\r\nVALUE b 2 1 2\r\nb\r\nEND\r\n")
    advance(1000)
    assert.strictEqual(send("get a b\r\n"), "VALUE a 1 1\r\na\r\nVALUE b 2 1\r\nb\r\nEND\r\n")
    // A negative time: gat still returns the item, which is gone afterwards; touch answers TOUCHED.
    assert.strictEqual(send("gat -1 a\r\nget a\r\n"), "VALUE a 1 1\r\na\r\nEND\r\nEND\r\n")
    assert.strictEqual(send("touch b -1\r\nget b\r\n"), "TOUCHED\r\nEND\r\n")
    assert.strictEqual(send("touch b abc\r\ngat abc b\r\n"), "CLIENT_ERROR invalid exptime argument\r\n".repeat(2))
    assert.strictEqual(send("gat 0\r\ngat\r\n"), "END\r\nERROR\r\n")
  })

  it("flushes everything at once, or after a delay what was stored before it", () => {
    const { send, advance } = server()
    send("set a 0 0 1\r\na\r\n")
    assert.strictEqual(send("flush_all\r\nget a\r\n"), "OK\r\nEND\r\n")
    send("set a 0 0 1\r\na\r\n")
    assert.strictEqual(send("flush_all 10\r\n"), "OK\r\n")
    advance(5)
    send("set b 0 0 1\r\nb\r\n")
    assert.strictEqual(send("get a b\r\n"), "VALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nEND\r\n")
    advance(5)
    send("set c 0 0 1\r\nc\r\n")
    assert.strictEqual(send("get a b c\r\n"), "VALUE c 0 1\r\nc\r\nEND\r\n")
    assert.strictEqual(send("flush_all abc\r\nflush_all -1\r\n"), "CLIENT_ERROR invalid exptime argument\r\nOK\r\n")
    assert.strictEqual(send("get c\r\n"), "END\r\n")
  })

  it("sends nothing for noreply, on every command that takes it", () => {
    const { send } = server()
    const silent = [
      "set a 0 0 1 noreply\r\n1\r\n",
      "add a 0 0 1 noreply\r\n2\r\n",
      "replace a 0 0 1 noreply\r\n3\r\n",
      "append a 0 0 1 noreply\r\n4\r\n",
      "prepend a 0 0 1 noreply\r\n5\r\n",
      "cas a 0 0 1 999 noreply\r\n6\r\n",
      "incr a 1 noreply\r\n",
      "decr a 1 noreply\r\n",
      "touch a 0 noreply\r\n",
      "verbosity 1 noreply\r\n",
      // A bad data chunk: its CLIENT_ERROR is silenced too.
      "set b 0 0 1 noreply\r\nbXY",
      "incr a x noreply\r\n",
      "delete nope noreply\r\n",
      "delete a 0 noreply\r\n",
      "flush_all 0 noreply\r\n",
      "flush_all noreply\r\n"
    ]
    for (const command of silent) assert.strictEqual(send(command), "", command)
    assert.strictEqual(send("version\r\n"), "VERSION 1.6.0-test\r\n")
  })

  it("answers ERROR, CLIENT_ERROR and SERVER_ERROR as memcached does", () => {
    const { send } = server()
    assert.strictEqual(send("bogus\r\n\r\nGET a\r\nget\r\n"), "ERROR\r\n".repeat(4))
    // A malformed storage line has no data block: what follows is read as a command.
    assert.strictEqual(send("set a 0 0\r\nhello\r\n"), "ERROR\r\nERROR\r\n")
    assert.strictEqual(send("set a x 0 1\r\nh\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n")
    assert.strictEqual(send("set a 4294967296 0 1\r\nh\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n")
    assert.strictEqual(send("set a 0 0 -1\r\nh\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n")
    assert.strictEqual(
      send(`set ${"k".repeat(251)} 0 0 1\r\nh\r\n`),
      "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    )
    assert.strictEqual(send("set a\x01 0 0 1\r\nh\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n")
    assert.strictEqual(send(`get a ${"k".repeat(251)}\r\n`), "CLIENT_ERROR bad command line format\r\n")
    assert.strictEqual(send(`set ${"k".repeat(250)} 0 0 1\r\nh\r\n`), "STORED\r\n")
    // A bad terminator: <bytes> + 2 bytes are taken, the rest is a line.
    assert.strictEqual(send("set a 0 0 5\r\nhelloXX\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n")
    assert.strictEqual(send("get a\r\n"), "END\r\n")
  })

  it("refuses an item over the size limit, swallows its block, and drops the old value of a set", () => {
    const { send, store } = server({ maxItemSize: 1024 })
    send("set a 0 0 1\r\na\r\n")
    assert.strictEqual(
      send(`set a 0 0 1025\r\n${"x".repeat(1025)}\r\nget a\r\n`),
      "SERVER_ERROR object too large for cache\r\nEND\r\n"
    )
    assert.strictEqual(send(`set a 0 0 1024\r\n${"x".repeat(1024)}\r\n`), "STORED\r\n")
    assert.strictEqual(send("append a 0 0 1\r\ny\r\n"), "SERVER_ERROR out of memory storing object\r\n")
    assert.strictEqual(store.get("a")?.value.length, 1024)
  })

  it("answers version, verbosity and stats, stats settings and stats reset", () => {
    const { send, advance, store } = server()
    store.connections = 1
    store.counters.total_connections = 1
    assert.strictEqual(send("version\r\nverbosity 1\r\n"), "VERSION 1.6.0-test\r\nOK\r\n")
    assert.strictEqual(send("verbosity\r\nverbosity x\r\n"), "ERROR\r\nCLIENT_ERROR bad command line format\r\n")
    send("set a 0 0 2\r\nab\r\nset b 0 0 1\r\nb\r\nget a nope\r\ndelete b\r\n")
    advance(7)
    const stats = send("stats\r\n")
    assert.match(stats, /END\r\n$/)
    assert.strictEqual(stat(stats, "pid"), "42")
    assert.strictEqual(stat(stats, "uptime"), "7")
    assert.strictEqual(stat(stats, "time"), String(Math.floor(start / 1000) + 7))
    assert.strictEqual(stat(stats, "version"), "1.6.0-test")
    assert.strictEqual(stat(stats, "curr_connections"), "1")
    assert.strictEqual(stat(stats, "total_connections"), "1")
    assert.strictEqual(stat(stats, "cmd_get"), "2")
    assert.strictEqual(stat(stats, "cmd_set"), "2")
    assert.strictEqual(stat(stats, "get_hits"), "1")
    assert.strictEqual(stat(stats, "get_misses"), "1")
    assert.strictEqual(stat(stats, "delete_hits"), "1")
    assert.strictEqual(stat(stats, "curr_items"), "1")
    assert.strictEqual(stat(stats, "total_items"), "2")
    assert.strictEqual(stat(stats, "bytes"), String(1 + 2 + 48))
    assert.strictEqual(stat(send("stats settings\r\n"), "verbosity"), "1")
    assert.strictEqual(send("stats reset\r\nstats nonsense\r\n"), "RESET\r\nERROR\r\n")
    assert.strictEqual(stat(send("stats\r\n"), "cmd_get"), "0")
  })

  it("evicts the least recently used items beyond the memory limit", () => {
    // Each item: 1-byte key + 100-byte value + 48 bytes of overhead = 149; room for 3.
    const { send, store } = server({ memoryLimit: 3 * 149 })
    const value = "v".repeat(100)
    for (const key of ["a", "b", "c"]) send(`set ${key} 0 0 100\r\n${value}\r\n`)
    send("get a\r\n")
    send(`set d 0 0 100\r\n${value}\r\n`)
    assert.strictEqual(send("get b\r\n"), "END\r\n")
    assert.strictEqual(send("get a c d\r\n").split("VALUE").length - 1, 3)
    assert.strictEqual(store.counters.evictions, 1)
    assert.isAtMost(store.bytes, 3 * 149)
  })

  it("closes on quit, and on a line too long after saying so", () => {
    assert.strictEqual(server().send("version\r\nquit\r\nversion\r\n"), "VERSION 1.6.0-test\r\n<closed>")
    assert.strictEqual(server().send("x".repeat(3000)), "CLIENT_ERROR line too long\r\n<closed>")
  })
})
