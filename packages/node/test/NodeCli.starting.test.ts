/**
 * The endpoints of `NodeCli.serve` while it starts (internal/cliServe.ts), in
 * the test process: they listen before the pool does, and until the pool
 * listens `/healthz` and `/stats.json` answer 503 `starting` and the agent
 * check `drain`; once it listens they answer 200 and `up`. The pool's own
 * listen (on a unix socket) is held until the test lets it go, so the start
 * is caught in the middle without racing it.
 */
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { tempDir } from "./utils/certificate.ts"
import { agentCheck as check } from "./utils/client.ts"
import { get } from "./utils/cliProcess.ts"
import { lineWith, startServe } from "./utils/serve.ts"
import { until } from "./utils/socketPair.ts"
import { within } from "./utils/within.ts"

/** One agent check, bounded. */
const agentCheck = (port: number) => within(check(port), "1 second", "the agent's reply")

/**
 * Holds every `listen` on `path` until `release` is called; the other servers
 * listen at once and are kept in `listening`. Restored with the scope.
 */
const holdListen = (path: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const original = Net.Server.prototype.listen
      const held: Array<() => void> = []
      const listening: Array<Net.Server> = []
      const spy = vi.spyOn(Net.Server.prototype, "listen").mockImplementation(function (this: Net.Server, ...args) {
        const options = args[0] as { readonly path?: unknown } | undefined
        if (options?.path === path) {
          held.push(() => original.apply(this, args as Parameters<typeof original>))
          return this
        }
        listening.push(this)
        return original.apply(this, args as Parameters<typeof original>)
      })
      const release = () => {
        for (const listen of held.splice(0)) listen()
      }
      return { held, listening, release, spy }
    }),
    ({ release, spy }) =>
      Effect.sync(() => {
        release()
        spy.mockRestore()
      })
  )

/** The TCP port a server listening on it has, once it listens. */
const portOf = (server: Net.Server | undefined) => {
  const address = server?.address()
  return typeof address === "object" && address !== null ? address.port : undefined
}

describe("NodeCli starting", { timeout: 10_000 }, () => {
  it.live("until the pool listens the endpoints say starting and drain; once it listens, ok and up", () =>
    Effect.gen(function* () {
      const socket = Path.join(yield* tempDir, "pool.sock")
      const hold = yield* holdListen(socket)
      const served = yield* startServe(
        {
          server: { path: socket },
          metrics: { host: "127.0.0.1", port: 0 },
          agent: { host: "127.0.0.1", port: 0 }
        },
        { name: "tested" },
        undefined,
        false
      )
      yield* until(() => hold.held.length === 1, "the pool's listen")
      const metrics = hold.listening.find((server) => server instanceof Http.Server)
      const agent = hold.listening.find((server) => !(server instanceof Http.Server))
      yield* until(() => portOf(metrics) !== undefined && portOf(agent) !== undefined, "the endpoints listening")
      const url = `http://127.0.0.1:${portOf(metrics)}`
      const agentPort = portOf(agent)!

      assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 503, body: "starting\n" })
      assert.deepStrictEqual(yield* get(`${url}/stats.json`), { status: 503, body: "starting\n" })
      assert.strictEqual(yield* agentCheck(agentPort), "drain\n")
      assert.isUndefined(lineWith(served.lines, " listening on "), "no listening line yet")

      hold.release()
      yield* until(() => lineWith(served.lines, " listening on ") !== undefined, "the listening line")
      assert.strictEqual(
        lineWith(served.lines, " listening on ")?.message.startsWith(`tested listening on unix:${socket} `),
        true
      )
      assert.deepStrictEqual(yield* get(`${url}/healthz`), { status: 200, body: "ok\n" })
      assert.strictEqual((yield* get(`${url}/stats.json`)).status, 200)
      assert.strictEqual(yield* agentCheck(agentPort), "up ready 100%\n")
      yield* served.stop
    }).pipe(Effect.scoped)
  )
})
