/**
 * The Redis example's commands on their own: each reply byte for byte, as
 * redis-server 7 gives it, with time passed by hand for expiry.
 */
import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import * as Commands from "../../src/internal/redisCommands.ts"

const setup = () => {
  const store = new Commands.Store()
  const session = Commands.session()
  let now = 1_000_000
  const run = (...words: ReadonlyArray<string>): string =>
    Commands.execute(
      store,
      session,
      words.map((word) => Buffer.from(word)),
      now
    ).toString("latin1")
  return {
    store,
    session,
    run,
    advance: (millis: number) => {
      now += millis
    },
    now: () => now
  }
}

describe("Redis commands", () => {
  it("PING, ECHO and the errors for unknown commands and wrong arity", () => {
    const { run } = setup()
    assert.strictEqual(run("PING"), "+PONG\r\n")
    assert.strictEqual(run("ping", "hello world"), "$11\r\nhello world\r\n")
    assert.strictEqual(run("PING", "a", "b"), "-ERR wrong number of arguments for 'ping' command\r\n")
    assert.strictEqual(run("EcHo", ""), "$0\r\n\r\n")
    assert.strictEqual(run("GET"), "-ERR wrong number of arguments for 'get' command\r\n")
    assert.strictEqual(run("foo"), "-ERR unknown command 'foo', with args beginning with: \r\n")
    assert.strictEqual(run("foo", "a", "b c"), "-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n")
    assert.strictEqual(
      run("x", "y".repeat(300)).length,
      "-ERR unknown command 'x', with args beginning with: '' \r\n".length + 128
    )
  })

  it("SET and GET, with NX, XX and the syntax errors", () => {
    const { run } = setup()
    assert.strictEqual(run("GET", "k"), "$-1\r\n")
    assert.strictEqual(run("SET", "k", "v"), "+OK\r\n")
    assert.strictEqual(run("GET", "k"), "$1\r\nv\r\n")
    assert.strictEqual(run("SET", "k", "w", "NX"), "$-1\r\n")
    assert.strictEqual(run("SET", "n", "1", "xx"), "$-1\r\n")
    assert.strictEqual(run("GET", "n"), "$-1\r\n")
    assert.strictEqual(run("SET", "k", "w", "XX"), "+OK\r\n")
    assert.strictEqual(run("SET", "new", "1", "nx"), "+OK\r\n")
    assert.strictEqual(run("GET", "k"), "$1\r\nw\r\n")
    assert.strictEqual(run("SET", "k", "v", "NX", "XX"), "-ERR syntax error\r\n")
    assert.strictEqual(run("SET", "k", "v", "EX"), "-ERR syntax error\r\n")
    assert.strictEqual(run("SET", "k", "v", "EX", "1", "PX", "1"), "-ERR syntax error\r\n")
    assert.strictEqual(run("SET", "k", "v", "BOGUS"), "-ERR syntax error\r\n")
    assert.strictEqual(run("SET", "k", "v", "EX", "ten"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(run("SET", "k", "v", "EX", "0"), "-ERR invalid expire time in 'set' command\r\n")
    assert.strictEqual(run("SET", "k", "v", "PX", "-5"), "-ERR invalid expire time in 'set' command\r\n")
    assert.strictEqual(
      run("SET", "k", "v", "EX", "9223372036854775807"),
      "-ERR invalid expire time in 'set' command\r\n"
    )
  })

  it("expires keys with EX, PX and EXPIRE: TTL and PTTL, lazy and periodic deletion", () => {
    const { run, advance, store, now } = setup()
    assert.strictEqual(run("TTL", "k"), ":-2\r\n")
    assert.strictEqual(run("SET", "k", "v", "EX", "10"), "+OK\r\n")
    assert.strictEqual(run("TTL", "k"), ":10\r\n")
    advance(2_400)
    assert.strictEqual(run("TTL", "k"), ":8\r\n")
    assert.strictEqual(run("PTTL", "k"), ":7600\r\n")
    advance(7_600)
    assert.strictEqual(run("GET", "k"), "$-1\r\n")
    assert.strictEqual(run("EXISTS", "k"), ":0\r\n")
    assert.strictEqual(run("SET", "p", "v", "px", "1500"), "+OK\r\n")
    assert.strictEqual(run("TTL", "p"), ":2\r\n")
    assert.strictEqual(run("SET", "p", "v"), "+OK\r\n")
    assert.strictEqual(run("TTL", "p"), ":-1\r\n")
    assert.strictEqual(run("EXPIRE", "p", "5"), ":1\r\n")
    assert.strictEqual(run("EXPIRE", "missing", "5"), ":0\r\n")
    assert.strictEqual(run("EXPIRE", "p", "soon"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(run("EXPIRE", "p", "9223372036854775807"), "-ERR invalid expire time in 'expire' command\r\n")
    assert.strictEqual(run("TTL", "p"), ":5\r\n")
    assert.strictEqual(run("SET", "gone", "v"), "+OK\r\n")
    assert.strictEqual(run("EXPIRE", "gone", "-1"), ":1\r\n")
    assert.strictEqual(run("GET", "gone"), "$-1\r\n")
    // The periodic sweep deletes expired keys that nobody reads.
    for (let i = 0; i < 50; i++) run("SET", `temp${i}`, "v", "PX", String(100 + i))
    assert.strictEqual(run("DBSIZE"), ":51\r\n")
    assert.strictEqual(store.sweep(now() + 10, 1000), 0)
    advance(200)
    assert.strictEqual(store.sweep(now(), 20) + store.sweep(now(), 20) + store.sweep(now(), 20), 50)
    assert.strictEqual(run("DBSIZE"), ":1\r\n")
    advance(5_000)
    assert.strictEqual(store.sweep(now(), 20), 1)
    assert.strictEqual(run("DBSIZE"), ":0\r\n")
  })

  it("DEL and EXISTS count keys, MSET and MGET", () => {
    const { run } = setup()
    assert.strictEqual(run("MSET", "a", "1", "b", "2", "c", ""), "+OK\r\n")
    assert.strictEqual(run("MSET", "a", "1", "b"), "-ERR wrong number of arguments for 'mset' command\r\n")
    assert.strictEqual(run("MGET", "a", "nope", "c", "b"), "*4\r\n$1\r\n1\r\n$-1\r\n$0\r\n\r\n$1\r\n2\r\n")
    assert.strictEqual(run("EXISTS", "a", "a", "nope", "b"), ":3\r\n")
    assert.strictEqual(run("DEL", "a", "nope", "a"), ":1\r\n")
    assert.strictEqual(run("DEL", "b", "c"), ":2\r\n")
    assert.strictEqual(run("EXISTS", "a", "b", "c"), ":0\r\n")
  })

  it("INCR, DECR, INCRBY and DECRBY on 64-bit integers, keeping the expiry", () => {
    const { run } = setup()
    assert.strictEqual(run("INCR", "n"), ":1\r\n")
    assert.strictEqual(run("INCRBY", "n", "41"), ":42\r\n")
    assert.strictEqual(run("DECR", "n"), ":41\r\n")
    assert.strictEqual(run("DECRBY", "n", "-9"), ":50\r\n")
    assert.strictEqual(run("GET", "n"), "$2\r\n50\r\n")
    assert.strictEqual(run("INCRBY", "n", "x"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(run("SET", "s", "abc"), "+OK\r\n")
    assert.strictEqual(run("INCR", "s"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(run("SET", "s", " 1"), "+OK\r\n")
    assert.strictEqual(run("INCR", "s"), "-ERR value is not an integer or out of range\r\n")
    for (const bad of ["007", "-0", "-", "1.5", "+1", "99999999999999999999"]) {
      assert.strictEqual(run("SET", "s", bad), "+OK\r\n")
      assert.strictEqual(run("INCR", "s"), "-ERR value is not an integer or out of range\r\n", bad)
    }
    assert.strictEqual(run("SET", "s", "-999999999999999"), "+OK\r\n")
    assert.strictEqual(run("INCRBY", "s", "-4503599627370497"), ":-5503599627370496\r\n")
    assert.strictEqual(run("SET", "max", "9223372036854775806"), "+OK\r\n")
    assert.strictEqual(run("INCR", "max"), ":9223372036854775807\r\n")
    assert.strictEqual(run("INCR", "max"), "-ERR increment or decrement would overflow\r\n")
    assert.strictEqual(run("DECRBY", "min", "9223372036854775808"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(run("SET", "t", "5", "EX", "100"), "+OK\r\n")
    assert.strictEqual(run("INCR", "t"), ":6\r\n")
    assert.strictEqual(run("TTL", "t"), ":100\r\n")
  })

  it("SELECT chooses one of 16 databases for its session only", () => {
    const { run, store } = setup()
    const other = Commands.session()
    assert.strictEqual(run("SELECT", "1"), "+OK\r\n")
    assert.strictEqual(run("SET", "k", "in 1"), "+OK\r\n")
    const inOther = (...words: ReadonlyArray<string>) =>
      Commands.execute(
        store,
        other,
        words.map((w) => Buffer.from(w)),
        0
      ).toString()
    assert.strictEqual(inOther("GET", "k"), "$-1\r\n")
    assert.strictEqual(inOther("SELECT", "1"), "+OK\r\n")
    assert.strictEqual(inOther("GET", "k"), "$4\r\nin 1\r\n")
    assert.strictEqual(run("SELECT", "16"), "-ERR DB index is out of range\r\n")
    assert.strictEqual(run("SELECT", "-1"), "-ERR DB index is out of range\r\n")
    assert.strictEqual(run("SELECT", "one"), "-ERR value is not an integer or out of range\r\n")
    assert.strictEqual(
      run("SELECT", "99999999999"),
      "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
    )
    assert.strictEqual(run("SELECT", "15"), "+OK\r\n")
    assert.strictEqual(run("GET", "k"), "$-1\r\n")
    assert.strictEqual(run("FLUSHDB"), "+OK\r\n")
    assert.strictEqual(inOther("DBSIZE"), ":1\r\n")
  })

  it("QUIT, CONFIG GET and COMMAND", () => {
    const { run, session } = setup()
    assert.strictEqual(run("CONFIG", "GET", "save"), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n")
    assert.strictEqual(run("CONFIG", "GET", "appendonly"), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")
    assert.strictEqual(run("config", "get", "DATA*"), "*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n")
    assert.strictEqual(run("CONFIG", "GET", "maxmemory"), "*0\r\n")
    assert.strictEqual(run("CONFIG", "GET", "*").startsWith("*8\r\n"), true)
    assert.strictEqual(run("CONFIG", "GET"), "-ERR wrong number of arguments for 'config|get' command\r\n")
    assert.strictEqual(run("CONFIG", "SET", "save", ""), "-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n")
    assert.strictEqual(run("COMMAND"), "*0\r\n")
    assert.strictEqual(run("COMMAND", "DOCS"), "*0\r\n")
    assert.match(run("COMMAND", "COUNT"), /^:\d+\r\n$/)
    assert.strictEqual(session.closing, false)
    assert.strictEqual(run("QUIT"), "+OK\r\n")
    assert.strictEqual(session.closing, true)
  })

  it("matches CONFIG GET patterns like redis-server's stringmatch", () => {
    assert.isTrue(Commands.globMatch("*", "save"))
    assert.isTrue(Commands.globMatch("s?v[a-f]", "save"))
    assert.isTrue(Commands.globMatch("[^x]ave", "save"))
    assert.isFalse(Commands.globMatch("[^s]ave", "save"))
    assert.isTrue(Commands.globMatch("sa\\ve", "save"))
    assert.isFalse(Commands.globMatch("sav", "save"))
    assert.isTrue(Commands.globMatch("*on*", "appendonly"))
  })
})
