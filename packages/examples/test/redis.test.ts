/**
 * The Redis example against the real clients: every command through
 * `redis-cli` with its reply checked, raw sockets for inline and pipelined
 * commands and protocol errors, and `redis-benchmark` pipelined and not, for
 * both callback kinds (the server runs in process, from `layer`, on a free
 * loopback port). Last, the program itself as a child process.
 */

import { Buffer } from "node:buffer"
import { assert, describe, it } from "@effect/vitest"
import type { ManagerConfig } from "@pool-manager/core"
import { NodeTcpServer } from "@pool-manager/node"
import { Context, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as Commands from "../src/internal/redisCommands.ts"
import * as Redis from "../src/redis.ts"
import { connect, startExample } from "./utils/example.ts"
import { runProgram } from "./utils/programs.ts"

/** Starts the server on a free port for the test's scope; returns the port. */
const serve = (sync: boolean, config?: ManagerConfig.Input) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(Redis.layer({ port: 0, sync, config }))
    const address = Context.get(context, NodeTcpServer.NodeTcpServer).address
    assert.isTrue("port" in address)
    return (address as { readonly port: number }).port
  })

/** `redis-cli` in its human format ("(integer) 1", "(nil)", quoted strings), on a new connection. */
const cli = (port: number, args: ReadonlyArray<string>, input?: string) =>
  runProgram(
    "redis-cli",
    ["--no-raw", "-h", "127.0.0.1", "-p", String(port), ...args],
    input === undefined ? {} : { input }
  ).pipe(Effect.map(({ stdout }) => stdout.replace(/\s+$/, "")))

/** Each redis-cli call of the conversation, and its output. */
const conversation: ReadonlyArray<readonly [ReadonlyArray<string>, string | RegExp]> = [
  [["PING"], "PONG"],
  [["PING", "hello world"], '"hello world"'],
  [["ECHO", "hi there"], '"hi there"'],
  [["SET", "k", "v", "EX", "10"], "OK"],
  [["TTL", "k"], /^\(integer\) (10|9)$/],
  [["PTTL", "k"], /^\(integer\) ([1-9]\d{0,3}|10000)$/],
  [["GET", "k"], '"v"'],
  [["SET", "k", "v2", "PX", "100000"], "OK"],
  [["TTL", "k"], /^\(integer\) (100|99)$/],
  [["SET", "k", "v3", "NX"], "(nil)"],
  [["SET", "k2", "v", "XX"], "(nil)"],
  [["SET", "k2", "v", "NX"], "OK"],
  [["SET", "k2", "w", "XX"], "OK"],
  [["GET", "k2"], '"w"'],
  [["GET", "missing"], "(nil)"],
  [["SET", "x", "1", "EX", "0"], "(error) ERR invalid expire time in 'set' command"],
  [["SET", "x", "1", "EX", "soon"], "(error) ERR value is not an integer or out of range"],
  [["SET", "x", "1", "NX", "XX"], "(error) ERR syntax error"],
  [["EXISTS", "k", "k2", "missing", "k"], "(integer) 3"],
  [["DEL", "k", "k2", "missing"], "(integer) 2"],
  [["EXISTS", "k", "k2"], "(integer) 0"],
  [["INCR", "n"], "(integer) 1"],
  [["INCRBY", "n", "41"], "(integer) 42"],
  [["DECR", "n"], "(integer) 41"],
  [["INCRBY", "n", "-50"], "(integer) -9"],
  [["INCRBY", "n", "many"], "(error) ERR value is not an integer or out of range"],
  [["SET", "word", "abc"], "OK"],
  [["INCR", "word"], "(error) ERR value is not an integer or out of range"],
  [["MSET", "a", "1", "b", "two words"], "OK"],
  [["MGET", "a", "b", "missing"], '1) "1"\n2) "two words"\n3) (nil)'],
  [["MSET", "a", "1", "b"], "(error) ERR wrong number of arguments for 'mset' command"],
  [["EXPIRE", "a", "100"], "(integer) 1"],
  [["TTL", "a"], /^\(integer\) (100|99)$/],
  [["TTL", "b"], "(integer) -1"],
  [["TTL", "missing"], "(integer) -2"],
  [["EXPIRE", "missing", "100"], "(integer) 0"],
  [["-n", "1", "SET", "only-in-1", "yes"], "OK"],
  [["GET", "only-in-1"], "(nil)"],
  [["-n", "1", "GET", "only-in-1"], '"yes"'],
  [["-n", "15", "GET", "only-in-1"], "(nil)"],
  [["SELECT", "16"], "(error) ERR DB index is out of range"],
  [["SELECT", "first"], "(error) ERR value is not an integer or out of range"],
  [["CONFIG", "GET", "save"], '1) "save"\n2) ""'],
  [["CONFIG", "GET", "appendonly"], '1) "appendonly"\n2) "no"'],
  [["CONFIG", "GET", "no-such-parameter"], "(empty array)"],
  [["COMMAND", "DOCS"], "(empty array)"],
  [["FOO", "a", "b"], "(error) ERR unknown command 'FOO', with args beginning with: 'a' 'b'"],
  [["GET"], "(error) ERR wrong number of arguments for 'get' command"],
  [["GET", "a", "b"], "(error) ERR wrong number of arguments for 'get' command"],
  [["QUIT"], "OK"]
]

const benchmarkTests = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]

/** Runs redis-benchmark quietly; returns the requests per second of each test, failing on any error it printed. */
const benchmark = (port: number, extra: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { stdout, stderr } = yield* runProgram(
      "redis-benchmark",
      ["-h", "127.0.0.1", "-p", String(port), "-t", "ping,set,get,incr,mset", "-n", "2000", "-c", "10", "-q", ...extra],
      { timeout: 120_000 }
    )
    assert.notMatch(`${stdout}\n${stderr}`, /error|ERR/i, "redis-benchmark reported an error")
    const rates = new Map<string, number>()
    for (const line of stdout.split(/[\r\n]+/)) {
      const match = /^(.+?): ([\d.]+) requests per second/.exec(line)
      if (match) rates.set(match[1]!, Number(match[2]))
    }
    for (const test of benchmarkTests) assert.isAbove(rates.get(test) ?? 0, 0, `${test} in ${JSON.stringify(stdout)}`)
    return rates
  })

for (const sync of [false, true]) {
  describe(`redis example, ${sync ? "synchronous" : "Effect"} callback`, () => {
    it.live(
      "answers every command as redis-server does, through redis-cli",
      () =>
        Effect.gen(function* () {
          const port = yield* serve(sync)
          for (const [args, expected] of conversation) {
            const output = yield* cli(port, args)
            if (typeof expected === "string") assert.strictEqual(output, expected, args.join(" "))
            else assert.match(output, expected, args.join(" "))
          }
        }),
      120_000
    )

    it.live(
      "keeps SELECT per connection, takes a 3 MB value, and expires keys in real time",
      () =>
        Effect.gen(function* () {
          const port = yield* serve(sync)
          // redis-cli reads one command a line from its input, all on one connection.
          const session = yield* cli(port, [], "SELECT 2\nSET s here\nGET s\nSELECT 0\nGET s\nSELECT 2\nGET s\n")
          assert.strictEqual(session, 'OK\nOK\n"here"\nOK\n(nil)\nOK\n"here"')
          assert.strictEqual(yield* cli(port, ["GET", "s"]), "(nil)")
          // A value of 3 MB arrives in many segments: redis-cli -x sends its input as the last argument.
          const big = "x".repeat(3 * 1024 * 1024)
          assert.strictEqual(yield* cli(port, ["-x", "SET", "big"], big), "OK")
          assert.strictEqual(yield* cli(port, ["GET", "big"]), `"${big}"`)
          assert.strictEqual(yield* cli(port, ["SET", "brief", "v", "PX", "1500"]), "OK")
          assert.strictEqual(yield* cli(port, ["GET", "brief"]), '"v"')
          yield* Effect.sleep("2 seconds")
          assert.strictEqual(yield* cli(port, ["GET", "brief"]), "(nil)")
        }),
      60_000
    )

    it.live(
      "answers inline and pipelined commands in order, and a command sent a byte at a time",
      () =>
        Effect.gen(function* () {
          const port = yield* serve(sync)
          const client = yield* connect(port)
          const pipelined =
            'PING\r\nSET "a key" \'a value\'\r\nGET "a key"\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$2\r\n10\r\nEXISTS n x\r\n'
          yield* client.send(pipelined)
          const expected = "+PONG\r\n+OK\r\n$7\r\na value\r\n:1\r\n:11\r\n:1\r\n"
          assert.strictEqual(yield* client.receive(expected.length), expected)
          const command = "*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$10\r\nbyte\r\nbyte\r\n"
          for (const byte of command) {
            yield* client.send(byte)
            yield* Effect.sleep("2 millis")
          }
          yield* client.send("GET slow\r\n")
          const more = "+OK\r\n$10\r\nbyte\r\nbyte\r\n"
          assert.strictEqual(yield* client.receive(expected.length + more.length), expected + more)
        }),
      60_000
    )

    it.live(
      "closes after QUIT, and after a protocol error with redis-server's reply",
      () =>
        Effect.gen(function* () {
          const port = yield* serve(sync)
          const quitting = yield* connect(port)
          yield* quitting.send("PING\r\nQUIT\r\nPING\r\n")
          assert.strictEqual(yield* quitting.closed(), "+PONG\r\n+OK\r\n")
          const bad = yield* connect(port)
          yield* bad.send("PING\r\n*1\r\n$x\r\nPING\r\n")
          assert.strictEqual(yield* bad.closed(), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n")
          const unbalanced = yield* connect(port)
          yield* unbalanced.send('SET "key value\r\n')
          assert.strictEqual(yield* unbalanced.closed(), "-ERR Protocol error: unbalanced quotes in request\r\n")
          // The server is still there for everyone else.
          assert.strictEqual(yield* cli(port, ["PING"]), "PONG")
          // A value over the pool's maxMessageBytes is refused by its announced length, before it arrives.
          const small = yield* serve(sync, { maxMessageBytes: 1024 })
          const large = yield* connect(small)
          yield* large.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n")
          assert.strictEqual(yield* large.closed(), "-ERR Protocol error: invalid bulk length\r\n")
          assert.strictEqual(yield* cli(small, ["SET", "k", "x".repeat(900)]), "OK")
        }),
      60_000
    )

    it.live(
      "serves redis-benchmark without errors, pipelined (-P 16) and not, applying every INCR once",
      () =>
        Effect.gen(function* () {
          const port = yield* serve(sync)
          yield* benchmark(port, ["-P", "16"])
          yield* benchmark(port, [])
          // Each run made 2000 INCRs of the one key it uses.
          assert.strictEqual(yield* cli(port, ["GET", "counter:__rand_int__"]), '"4000"')
          assert.strictEqual(yield* cli(port, ["GET", "key:__rand_int__"]), '"VXK"')
        }),
      240_000
    )
  })
}

describe("RedisStore", () => {
  it.effect("its layer deletes expired keys every 100 ms on the Clock, without reads", () =>
    Effect.gen(function* () {
      const store = yield* Redis.RedisStore
      const set = (key: string, millis: string) =>
        Commands.execute(
          store,
          Commands.session(),
          ["SET", key, "v", "PX", millis].map((w) => Buffer.from(w)),
          0
        )
      set("soon", "50")
      set("later", "250")
      const keys = () => [...store.databases[0]!.entries.keys()]
      assert.deepStrictEqual(keys(), ["soon", "later"])
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(keys(), ["later"])
      yield* TestClock.adjust("200 millis")
      assert.deepStrictEqual(keys(), [])
    }).pipe(Effect.provide(Redis.RedisStore.layer))
  )
})

describe("redis example program", () => {
  it.live(
    "runs with npm run example's entry point, serves redis-cli, and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("main.ts", ["redis", "--port", "0", "--sync"])
        assert.strictEqual(yield* cli(port, ["SET", "greeting", "hello"]), "OK")
        assert.strictEqual(yield* cli(port, ["GET", "greeting"]), '"hello"')
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
