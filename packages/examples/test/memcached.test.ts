/**
 * The memcached example over real loopback sockets, for both callback kinds:
 * pipelined commands in one write, a data block split at every byte
 * boundary, noreply, the error replies, an oversized item swallowed, a line
 * too long and quit closing, curr_connections kept by the per-connection
 * state, the connection limit; and the program itself run as
 * `main.ts memcached` in a child process.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startExample } from "./utils/example.ts"
import { rawConnect, startMemcached } from "./utils/memcached.ts"

const binary = Buffer.from([0, 13, 10, 255, 128, 32, 13, 10]).toString("latin1")

describe.each([
  { kind: "an Effect callback", sync: false },
  { kind: "a synchronous callback", sync: true }
])("memcached example with $kind, over raw sockets", ({ sync }) => {
  it.live(
    "answers pipelined commands sent in one write, in order",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const client = yield* rawConnect(port)
        const requests = [
          ["set a 1 0 3\r\nabc\r\n", "STORED\r\n"],
          [`set bin 2 0 8\r\n${binary}\r\n`, "STORED\r\n"],
          ["add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"],
          ["append a 0 0 2\r\nde\r\n", "STORED\r\n"],
          ["get a bin nope\r\n", `VALUE a 1 5\r\nabcde\r\nVALUE bin 2 8\r\n${binary}\r\nEND\r\n`],
          ["gets a\r\n", "VALUE a 1 5 3\r\nabcde\r\nEND\r\n"],
          ["cas a 0 0 1 3\r\nz\r\n", "STORED\r\n"],
          ["cas a 0 0 1 3\r\ny\r\n", "EXISTS\r\n"],
          ["set n 0 0 2\r\n41\r\n", "STORED\r\n"],
          ["incr n 1\r\n", "42\r\n"],
          ["decr n 100\r\n", "0\r\n"],
          ["touch n 100\r\n", "TOUCHED\r\n"],
          ["gat 0 n\r\n", "VALUE n 0 2\r\n0 \r\nEND\r\n"],
          ["delete n\r\n", "DELETED\r\n"],
          ["delete n\r\n", "NOT_FOUND\r\n"],
          ["bogus\r\n", "ERROR\r\n"],
          ["version\r\n", "VERSION 1.6.0-pool-manager\r\n"],
          ["verbosity 1\r\n", "OK\r\n"],
          ["flush_all\r\n", "OK\r\n"],
          ["get a\r\n", "END\r\n"]
        ]
        const expected = requests.map(([, reply]) => reply).join("")
        const replies = yield* client.roundTrip(requests.map(([request]) => request).join(""), expected)
        assert.strictEqual(replies, expected)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "takes a command and its data block split at every byte boundary",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const client = yield* rawConnect(port)
        const request = `set split 9 0 8\r\n${binary}\r\n`
        for (let point = 1; point < request.length; point++) {
          yield* client.send(request.slice(0, point))
          // Long enough for the first part to be read on its own.
          yield* Effect.sleep("5 millis")
          assert.strictEqual(
            yield* client.roundTrip(request.slice(point), "STORED\r\n"),
            "STORED\r\n",
            `split at ${point}`
          )
        }
        const value = `VALUE split 9 8\r\n${binary}\r\nEND\r\n`
        assert.strictEqual(yield* client.roundTrip("get split\r\n", value), value)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "sends nothing for noreply, and every error reply memcached sends",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const client = yield* rawConnect(port)
        const silent = "set a 0 0 1 noreply\r\n1\r\nincr a 5 noreply\r\ndelete b noreply\r\nflush_all 100 noreply\r\n"
        assert.strictEqual(
          yield* client.roundTrip(`${silent}get a\r\n`, "VALUE a 0 1\r\n6\r\nEND\r\n"),
          "VALUE a 0 1\r\n6\r\nEND\r\n"
        )
        const errors = [
          ["set a 0 0 5\r\nhelloXX\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"],
          [`set ${"k".repeat(251)} 0 0 1\r\nh\r\n`, "CLIENT_ERROR bad command line format\r\nERROR\r\n"],
          ["set a\x7f 0 0 1\r\nh\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"],
          ["set a 0 0\r\n", "ERROR\r\n"],
          ["incr a x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"],
          [
            "set s 0 0 1\r\nx\r\nincr s 1\r\n",
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
          ],
          ["touch a x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"],
          ["delete a 1\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"],
          ["stats nonsense\r\n", "ERROR\r\n"]
        ]
        for (const [request, reply] of errors) assert.strictEqual(yield* client.roundTrip(request!, reply!), reply)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "refuses an item over 1 MB and swallows its block as it arrives; the connection goes on",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const client = yield* rawConnect(port)
        yield* client.roundTrip("set big 0 0 1\r\nb\r\n", "STORED\r\n")
        const size = 2 * 1024 * 1024
        yield* client.send(`set big 0 0 ${size}\r\n`)
        const piece = Buffer.alloc(64 * 1024, 0x78)
        for (let sent = 0; sent < size; sent += piece.length) yield* client.send(piece)
        const reply = "SERVER_ERROR object too large for cache\r\nEND\r\n"
        // The old value is gone too, as memcached drops it.
        assert.strictEqual(yield* client.roundTrip("\r\nget big\r\n", reply), reply)
        // The largest frame: a 2048-byte line (runs of spaces count as one) and a 1 MB value.
        const line = `set big${" ".repeat(2030)}0 0 ${1024 * 1024}`
        assert.strictEqual(line.length, 2048)
        const stored = `${line}\r\n${"y".repeat(1024 * 1024)}\r\n`
        assert.strictEqual(yield* client.roundTrip(stored, "STORED\r\n"), "STORED\r\n")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "closes on quit, and on a line over 2048 bytes after CLIENT_ERROR line too long",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const quitting = yield* rawConnect(port)
        yield* quitting.send("version\r\nquit\r\nversion\r\n")
        assert.strictEqual(yield* quitting.closed(), "VERSION 1.6.0-pool-manager\r\n")
        const long = yield* rawConnect(port)
        yield* long.send(`version\r\n${"x".repeat(3000)}`)
        assert.strictEqual(yield* long.closed(), "VERSION 1.6.0-pool-manager\r\nCLIENT_ERROR line too long\r\n")
        // A retrieval's key list may be longer.
        const keys = yield* rawConnect(port)
        const many = Array.from({ length: 500 }, (_, i) => `key-${i}`).join(" ")
        assert.strictEqual(yield* keys.roundTrip(`get ${many}\r\n`, "END\r\n"), "END\r\n")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "counts connections with per-connection state, and refuses one over the limit as memcached does",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync, maxConnections: 2 })
        const first = yield* rawConnect(port)
        const connections = (stats: string) => /STAT curr_connections (\d+)\r\n/.exec(stats)?.[1]
        const second = yield* Effect.scoped(
          Effect.gen(function* () {
            const second = yield* rawConnect(port)
            yield* second.roundTrip("version\r\n", "VERSION 1.6.0-pool-manager\r\n")
            const refused = yield* rawConnect(port)
            assert.strictEqual(yield* refused.closed(), "ERROR Too many open connections\r\n")
            yield* first.send("stats\r\n")
            return connections(yield* first.receiveUntil("END\r\n"))
          })
        )
        assert.strictEqual(second, "2")
        // The second connection's scope closed: its state's finalizer counts it out.
        let now: string | undefined
        for (let attempt = 0; attempt < 100 && now !== "1"; attempt++) {
          yield* first.send("stats\r\n")
          now = connections(yield* first.receiveUntil("END\r\n"))
          if (now !== "1") yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(now, "1")
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("memcached program", () => {
  it.live(
    "runs as `npm run example -- memcached`, answers, and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startExample("main.ts", ["memcached", "--port", "0", "--sync"])
        assert.match(child.stdout(), /memcached listening on 127\.0\.0\.1:\d+ callback=sync/)
        const client = yield* rawConnect(port)
        const reply = "STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
        assert.strictEqual(yield* client.roundTrip("set k 0 0 2\r\nhi\r\nget k\r\n", reply), reply)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
