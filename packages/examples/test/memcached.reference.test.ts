/**
 * The memcached example against the real memcached (Debian's `memcached`,
 * started on a free loopback port): the same byte streams, edge cases
 * included, get the same bytes back from both, for both callback kinds.
 * The deliberate differences (a too-long line gets `CLIENT_ERROR line too
 * long` before the close; keys with control characters and flags over 32
 * bits are refused) are tested in `memcached.test.ts` instead.
 */
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startMemcached } from "./utils/memcached.ts"

/** A free loopback port: listen on 0, note the port, close. */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** True when something accepts connections on 127.0.0.1:`port`. */
const accepts = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

/** The real memcached on a free loopback port, killed when the scope closes. */
const startRealMemcached = Effect.gen(function* () {
  const port = yield* freePort
  const args = ["-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "64"]
  // memcached refuses to run as root without a user to switch to.
  if (process.getuid?.() === 0) args.push("-u", "nobody")
  const child = yield* Effect.acquireRelease(
    Effect.sync(() => ChildProcess.spawn("memcached", args, { stdio: "ignore" })),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )
  let failure: Error | undefined
  child.once("error", (error: NodeJS.ErrnoException) => {
    failure = error.code === "ENOENT" ? new Error("memcached is not installed: install Debian's memcached") : error
  })
  child.once("exit", (code) => {
    failure ??= new Error(`memcached exited with code ${code} before listening`)
  })
  for (let attempt = 0; attempt < 200; attempt++) {
    if (failure !== undefined) return yield* Effect.fail(failure)
    if (yield* accepts(port)) return port
    yield* Effect.sleep("50 millis")
  }
  return yield* Effect.fail(new Error(`memcached did not listen on ${port} within 10 s`))
})

/**
 * Sends `request` (latin1) on a new connection, then `version` as a marker,
 * and returns what came back up to the marker (or up to the close).
 */
const exchange = (port: number, request: string) =>
  Effect.callback<string, Error>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let received = ""
    const done = (text: string) => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(text))
    }
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.fail(new Error(`no reply to ${JSON.stringify(request.slice(0, 80))}: ${JSON.stringify(received)}`)))
    }, 10_000)
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1")
      const marker = /VERSION [^\r]*\r\n$/.exec(received)
      if (marker !== null) done(received.slice(0, marker.index))
    })
    socket.on("close", () => done(`${received}<closed>`))
    socket.on("error", () => {})
    socket.write(Buffer.from(`flush_all noreply\r\n${request}version\r\n`, "latin1"))
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const longKey = "k".repeat(251)
const MB = 1024 * 1024

/** Streams whose replies memcached 1.6 and the example must agree on, byte for byte. */
const cases: ReadonlyArray<string> = [
  "set a 5 0 3\r\nabc\r\nadd a 0 0 1\r\nx\r\nadd b 0 0 1\r\nb\r\nget a b c\r\n",
  "set a 0 0 1\r\na\r\nreplace a 9 0 2\r\nbb\r\nreplace z 0 0 1\r\nz\r\nappend a 0 0 1\r\nc\r\nprepend a 0 0 1\r\n_\r\nget a\r\n",
  "append nope 0 0 1\r\na\r\nprepend nope 0 0 1\r\na\r\ncas nope 0 0 1 1\r\na\r\n",
  `set bin 0 0 6\r\n\x00\r\n\xff\r\n\r\nget bin\r\n`,
  "set e 0 0 0\r\n\r\nget e\r\nincr e 1\r\n",
  `set ${longKey} 0 0 5\r\nhello\r\n`,
  // Alone: memcached 1.6 drops the replies before a get's CLIENT_ERROR in the same read (not mirrored).
  `get ${longKey}\r\n`,
  `get a ${longKey}\r\n`,
  "set k 0 0 -1\r\nhello\r\nset k abc 0 5\r\nhello\r\nset k -1 0 1\r\na\r\n",
  "set k 0 0 5\r\nhelloXX\r\nset k 0 0 5 noreply\r\nhelloXX\r\nget k\r\n",
  "set k 0 0\r\nhello\r\nset k 0 0 5 6 7\r\nhello\r\nset k 0 0 1 blah\r\na\r\nset k 0 0 1 \r\nb\r\nget k\r\n",
  "get\r\nGET k\r\n\r\nbogus\r\nincr\r\ndecr k\r\ntouch\r\ndelete\r\ncas\r\nflush_all 1 2 3\r\nverbosity\r\ngets\r\n",
  "set n 0 0 2\r\n10\r\ndecr n 1\r\nget n\r\nincr n 100\r\nget n\r\n",
  "set n 0 0 20\r\n18446744073709551615\r\nincr n 2\r\ndecr n 5\r\nincr n 18446744073709551615\r\n",
  "set n 0 0 21\r\n118446744073709551615\r\nincr n 2\r\nset n 0 0 3\r\n1a2\r\nincr n 1\r\n",
  "set n 0 0 3\r\n 12\r\nincr n 1\r\nset n 0 0 4\r\n12 a\r\nincr n 1\r\nset n 0 0 3\r\n+12\r\nincr n +1\r\n",
  "set n 0 0 2\r\n-1\r\nincr n 1\r\nincr n abc\r\nincr n -1\r\nincr n 18446744073709551616\r\n",
  "incr nope 1\r\ndecr nope 1\r\ntouch nope 0\r\ndelete nope\r\nincr nope 1 noreply\r\n",
  "set k 0 0 1 noreply\r\na\r\nadd k 0 0 1 noreply\r\nb\r\nincr k 1 noreply\r\ndelete k noreply\r\nget k\r\n",
  "verbosity abc\r\nverbosity 1 noreply\r\nverbosity 1\r\nverbosity +1\r\n",
  "set k 0 0 1\r\na\r\ndelete k 0\r\ndelete k 5\r\ndelete k 0 noreply\r\ndelete k noreply\r\ndelete k\r\n",
  "flush_all abc\r\nflush_all -1\r\nflush_all 0 noreply\r\nflush_all noreply\r\nflush_all\r\nflush_all +0\r\n",
  "set k 0 0 1\r\na\r\ntouch k\r\ntouch k abc\r\ntouch k 100\r\ngat\r\ngat 0\r\ngat abc k\r\ngat 100 k\r\n",
  "set k 0 -1 1\r\na\r\nget k\r\nadd k 0 0 1\r\nb\r\nget k\r\n",
  "set k 0 0 1\r\na\r\ngat -1 k\r\nget k\r\nset k 0 0 1\r\na\r\ntouch k -1\r\nget k\r\n",
  "set x 0 2592001 1\r\n1\r\nget x\r\nset y 0 4000000000 1\r\n1\r\n",
  "set k 0 0 1\n a\r\nget k\nset  k  0  0  1\r\na\r\nget  k \r\nset k 0 0 01\r\nb\r\nget k\r\n",
  "set k 4294967295 0 1\r\na\r\nget k\r\nset k +5 +0 +1\r\na\r\nget k\r\nset k 0 0 0x1\r\na\r\n",
  "get k noreply\r\nget a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5\r\nstats foo\r\n",
  `set big 0 0 ${2 * MB}\r\n${"x".repeat(2 * MB)}\r\nget big\r\nset big 0 0 ${MB + 1}\r\n${"x".repeat(MB + 1)}\r\n`,
  "set k 0 0 2147483647\r\n",
  "version\r\nquit\r\nversion\r\n",
  "quit extra\r\n"
]

describe.each([
  { kind: "an Effect callback", sync: false },
  { kind: "a synchronous callback", sync: true }
])("memcached example with $kind, against the real memcached", ({ sync }) => {
  it.live(
    "answers every stream byte for byte as memcached does",
    () =>
      Effect.gen(function* () {
        const real = yield* startRealMemcached
        const { port } = yield* startMemcached({ sync })
        for (const request of cases) {
          const expected = yield* exchange(real, request)
          const actual = yield* exchange(port, request)
          assert.strictEqual(actual, expected, `for ${JSON.stringify(request.slice(0, 120))}`)
        }
      }).pipe(Effect.scoped),
    120_000
  )
})
