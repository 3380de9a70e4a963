/**
 * The lines `NodeCli.serve` logs once it listens (internal/cliServe.ts), in
 * the test process: in JSON, the listening line's address, TLS, processes and
 * settings as fields; in text, the same written out; the default name
 * `pool-manager`; only the endpoints configured get a line; and outside a
 * cluster no line carries `process` or `pid`. NodeCli.serve.test.ts runs the
 * command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { certificate } from "./utils/certificate.ts"
import { lineWith, messages, startServe } from "./utils/serve.ts"

describe("NodeCli listening lines", { timeout: 10_000 }, () => {
  it.live("in JSON: the address, TLS, processes and the settings as fields, and no other line", () =>
    Effect.gen(function* () {
      const served = yield* startServe({ logFormat: "json", manager: { maxWorkersCount: 3 } }, { name: "tested" })
      const listening = lineWith(served.lines, " listening on ")
      const port = Number(/^tested listening on 127\.0\.0\.1:(\d+)$/.exec(listening?.message ?? "")?.[1])
      assert.isAbove(port, 0, listening?.message)
      assert.include(listening?.annotations, {
        host: "127.0.0.1",
        port,
        processes: 1,
        tls: false,
        "max-workers": 3,
        "drain-timeout": "30s"
      })
      assert.notProperty(listening?.annotations, "process")
      assert.notProperty(listening?.annotations, "pid")
      // No metrics endpoint and no agent check configured: the listening line is all.
      assert.deepStrictEqual(messages(served.lines), [listening?.message])
      yield* served.stop
    })
  )

  it.live("in JSON over TLS: tls is true", () =>
    Effect.gen(function* () {
      const { key, cert } = yield* certificate
      const served = yield* startServe({
        logFormat: "json",
        server: { host: "127.0.0.1", port: 0, tls: { key, cert } }
      })
      assert.include(lineWith(served.lines, " listening on ")?.annotations, { tls: true, processes: 1 })
      yield* served.stop
    }).pipe(Effect.scoped)
  )

  it.live("in text: the settings written out, with TLS and the processes; the default name is pool-manager", () =>
    Effect.gen(function* () {
      const { key, cert } = yield* certificate
      const served = yield* startServe({
        logFormat: "text",
        manager: { maxWorkersCount: 4 },
        server: { host: "127.0.0.1", port: 0, tls: { key, cert } }
      })
      const listening = lineWith(served.lines, " listening on ")
      assert.match(listening?.message ?? "", /^pool-manager listening on 127\.0\.0\.1:\d+ .* max-workers=4 /)
      assert.match(listening?.message ?? "", / tls=true processes=1$/)
      assert.deepStrictEqual(listening?.annotations, {})
      yield* served.stop
    }).pipe(Effect.scoped)
  )

  it.live("the endpoints' lines follow the listening line, for the endpoints configured", () =>
    Effect.gen(function* () {
      const served = yield* startServe(
        { metrics: { host: "127.0.0.1", port: 0 }, agent: { host: "127.0.0.1", port: 0 } },
        { name: "tested" }
      )
      const logged = messages(served.lines)
      assert.strictEqual(logged.length, 3, logged.join("\n"))
      assert.match(logged[0] ?? "", /^tested listening on /)
      assert.match(
        logged[1] ?? "",
        /^tested metrics at http:\/\/127\.0\.0\.1:\d+\/metrics and \/healthz, status page at /
      )
      assert.match(logged[2] ?? "", /^tested agent-check at 127\.0\.0\.1:\d+$/)
      yield* served.stop
    })
  )
})
