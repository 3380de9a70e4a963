/**
 * `--shutdown-delay` on the real command: after SIGTERM `/healthz` fails at
 * once while new connections are still served; after the delay the listener
 * closes and the process exits 0; a second signal skips the rest of the delay.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, get, runBin, spawnNode } from "./utils/cliProcess.ts"

const start = (delay: string) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([bin, ...`--port 0 --metrics-port 0 --shutdown-delay ${delay}`.split(" ")])
    const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
    const metrics = (yield* child.waitFor(/metrics at (http:\S+)\/metrics/))[1]!
    return { child, port, healthz: `${metrics}/healthz` }
  })

const ask = (port: number) =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.send("HI!")
    return yield* client.receive(2)
  }).pipe(Effect.scoped)

describe("NodeCli --shutdown-delay", () => {
  it.live(
    "fails /healthz at once on SIGTERM, keeps serving new connections for the delay, then closes and exits 0",
    () =>
      Effect.gen(function* () {
        const { child, port, healthz } = yield* start("1500ms")
        assert.deepStrictEqual(yield* get(healthz), { status: 200, body: "ok\n" })
        // A connection open before the signal is served through the delay too.
        const early = yield* connect(port)
        const signalled = Date.now()
        child.process.kill("SIGTERM")
        yield* child.waitFor(/shutting down: still accepting/)
        assert.deepStrictEqual(yield* get(healthz), { status: 503, body: "stopping\n" })
        assert.strictEqual(yield* ask(port), "OK")
        yield* early.send("HI!")
        assert.strictEqual(yield* early.receive(2), "OK")
        yield* Effect.sleep("500 millis")
        assert.strictEqual(yield* ask(port), "OK")
        early.socket.end()
        assert.strictEqual(yield* child.exit(10_000), 0)
        assert.isAtLeast(Date.now() - signalled, 1500)
        const refused = yield* Effect.flip(connect(port).pipe(Effect.scoped))
        assert.match(String(refused), /ECONNREFUSED/)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a second signal skips the rest of the delay",
    () =>
      Effect.gen(function* () {
        const { child } = yield* start("60s")
        const signalled = Date.now()
        child.process.kill("SIGTERM")
        yield* child.waitFor(/shutting down: still accepting/)
        child.process.kill("SIGINT")
        assert.strictEqual(yield* child.exit(20_000), 0)
        assert.isBelow(Date.now() - signalled, 20_000)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "with --processes 2, a second signal to the primary skips the workers' delay too",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin, ..."--port 0 --processes 2 --shutdown-delay 60s".split(" ")])
        yield* child.waitForAll(/listening on 127\.0\.0\.1:\d+ /, 2)
        const signalled = Date.now()
        child.process.kill("SIGTERM")
        yield* child.waitForAll(/shutting down: still accepting/, 2)
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(20_000), 0)
        assert.isBelow(Date.now() - signalled, 20_000)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "--help shows the flags of running behind a balancer with their defaults; --agent-port needs one process",
    () =>
      Effect.gen(function* () {
        const { stdout } = yield* runBin(["--help"])
        assert.match(stdout, /--shutdown-delay[^\n]*\(default: 0\)/)
        assert.match(stdout, /--agent-port[^\n]*\(default: off\)/)
        assert.match(stdout, /--agent-host[^\n]*\(default: 127\.0\.0\.1\)/)
        const cluster = yield* runBin(["--agent-port", "0", "--processes", "2"])
        assert.strictEqual(cluster.code, 2)
        assert.include(cluster.stderr, "--agent-port needs --processes 1")
      }),
    60_000
  )
})
