/**
 * The memcached example against the real libmemcached tools (Debian's
 * libmemcached-tools, ASCII protocol: no `--binary`), for both callback
 * kinds: memccp then memccat give back every file byte for byte (a text
 * file, ~100 KB of random bytes, every byte value), memcflush empties the
 * cache, memcstat reads the statistics, and memcslap's set, get and mget
 * tests (also with noreply) finish with no error.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runTool, startMemcached } from "./utils/memcached.ts"
import type { Run } from "./utils/programs.ts"

const files = {
  "hello.txt": Buffer.from("hello from the pool\n"),
  "random.bin": Crypto.randomBytes(100 * 1024),
  "all-bytes.bin": Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256))
}

/** A directory holding `files`, removed when the scope closes. */
const fileDirectory = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "memcached-example-"))
    for (const [name, bytes] of Object.entries(files)) Fs.writeFileSync(Path.join(dir, name), bytes)
    return dir
  }),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const succeeded = (what: string, result: Run) =>
  assert.strictEqual(result.code, 0, `${what} failed: ${result.stderr}${result.stdout}`)

describe.each([
  { kind: "an Effect callback", sync: false },
  { kind: "a synchronous callback", sync: true }
])("memcached example with $kind, against libmemcached's tools", ({ sync }) => {
  it.live(
    "memccp then memccat round-trips files byte for byte; memcflush empties the cache; memcstat reports",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const servers = `--servers=127.0.0.1:${port}`
        const dir = yield* fileDirectory
        const names = Object.keys(files)
        succeeded("memccp", yield* runTool("memccp", [servers, ...names.map((name) => Path.join(dir, name))]))
        for (const [name, bytes] of Object.entries(files)) {
          const out = Path.join(dir, `${name}.out`)
          succeeded(`memccat ${name}`, yield* runTool("memccat", [servers, `--file=${out}`, name]))
          assert.isTrue(Fs.readFileSync(out).equals(bytes), `${name} came back different`)
        }
        // memccat prints to stdout with a newline after the value.
        const printed = yield* runTool("memccat", [servers, "hello.txt"])
        succeeded("memccat hello.txt", printed)
        assert.strictEqual(printed.stdout, "hello from the pool\n\n")

        const stats = yield* runTool("memcstat", [servers])
        succeeded("memcstat", stats)
        assert.match(stats.stdout, new RegExp(`Server: 127\\.0\\.0\\.1 \\(${port}\\)`))
        assert.match(stats.stdout, /version: 1\.6\.0-pool-manager/)
        assert.match(stats.stdout, new RegExp(`pid: ${process.pid}\\b`))
        assert.match(stats.stdout, /curr_items: 3\b/)
        assert.match(stats.stdout, /cmd_set: 3\b/)
        assert.match(stats.stdout, /get_hits: 4\b/)

        succeeded("memcflush", yield* runTool("memcflush", [servers]))
        for (const name of names) {
          const missing = yield* runTool("memccat", [servers, name])
          assert.notStrictEqual(missing.code, 0, `memccat ${name} found it after memcflush`)
        }
        assert.match((yield* runTool("memcstat", [servers])).stdout, /curr_items: 0\b/)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "memcslap's set, get and mget tests, and set with noreply, finish with no error",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startMemcached({ sync })
        const servers = `--servers=127.0.0.1:${port}`
        for (const extra of [["--test=set"], ["--test=get"], ["--test=mget"], ["--test=set", "--noreply"]]) {
          const result = yield* runTool("memcslap", [servers, "--concurrency=8", "--execute-number=1000", ...extra])
          succeeded(`memcslap ${extra.join(" ")}`, result)
          assert.notMatch(`${result.stdout}${result.stderr}`, /error|fail/i)
          // memcslap exits with 0 even when the server answered errors: the count of keys done tells.
          const test = extra[0]!.slice("--test=".length)
          assert.match(result.stdout, new RegExp(`Time to ${test} +8000 keys by +8 threads`))
        }
        // The load went through this server: 8 threads did 1000 sets or gets each per test.
        const stats = (yield* runTool("memcstat", [servers])).stdout
        const stat = (name: string) => Number(new RegExp(`${name}: (\\d+)`).exec(stats)?.[1])
        assert.isAtLeast(stat("cmd_set"), 2 * 8000)
        assert.isAtLeast(stat("get_hits"), 2 * 8000)
      }).pipe(Effect.scoped),
    180_000
  )
})

describe("memcached tools helper", () => {
  it.live("fails, never skips, when a tool is not installed, saying what to install", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(runTool("memc-no-such-tool", ["--help"]))
      assert.match(error.message, /memc-no-such-tool is not installed: install Debian's libmemcached-tools/)
    })
  )
})
