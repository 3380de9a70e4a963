/**
 * The data of the command's log lines (internal/logFields.ts), in this
 * process: an address as fields and as the listening line shows it, each
 * setting under its flag's name with durations spelled as the flags spell
 * them, and a line logged with its data as fields in JSON or written out in
 * text. NodeCli.test.ts and NodeCliLogging.json.test.ts check the lines the
 * command prints.
 */
import type * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { ManagerConfig } from "@pool-manager/core"
import { Duration, Effect } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { addressFields, logWithFields, settingFields, showDuration, where } from "../src/internal/logFields.ts"
import { flagNames } from "../src/NodeCliConfig.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"

/** The lines `effect` logs, with their annotations. */
const logged = (effect: Effect.Effect<void>) => {
  const lines: Array<LogLine> = []
  return effect.pipe(
    Effect.provide(capturingLogs(lines)),
    Effect.map(() => lines.map(({ message, annotations }) => ({ message, annotations })))
  )
}

describe("NodeCli log fields", () => {
  it("an address as fields: host and port over TCP (IPv4 and IPv6), path for a unix socket", () => {
    assert.deepStrictEqual(addressFields(NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6263)), {
      host: "127.0.0.1",
      port: 6263
    })
    assert.deepStrictEqual(addressFields(NetAddress.inetAddressFromIpStringUnsafe("::1", 80)), {
      host: "::1",
      port: 80
    })
    assert.deepStrictEqual(addressFields(NetAddress.unixPathAddress("/run/pool.sock")), { path: "/run/pool.sock" })
    // What a node:net server's address() gives: a path, or an AddressInfo.
    assert.deepStrictEqual(addressFields("/run/pool.sock"), { path: "/run/pool.sock" })
    const info: Net.AddressInfo = { address: "10.0.0.1", family: "IPv4", port: 7000 }
    assert.deepStrictEqual(addressFields(info), { host: "10.0.0.1", port: 7000 })
  })

  it("an address as the listening line shows it", () => {
    assert.strictEqual(where(NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6263)), "127.0.0.1:6263")
    assert.strictEqual(where(NetAddress.unixPathAddress("/run/pool.sock")), "unix:/run/pool.sock")
  })

  it.effect("each setting under its flag's name, durations as the flags spell them", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make({
        maxWorkersCount: 7,
        clientsDeadline: Duration.seconds(3),
        idleWorkerTimeout: Duration.infinity
      })
      const fields = settingFields(config, flagNames)
      assert.deepStrictEqual(Object.keys(fields), Object.values(flagNames))
      assert.include(fields, { "max-workers": 7, "clients-deadline": "3s", "idle-worker-timeout": "infinity" })
      assert.strictEqual(showDuration(Duration.millis(1500)), "1s 500ms")
    })
  )

  it.effect("a line with data: the message with its data as fields in JSON, the written-out text otherwise", () =>
    Effect.gen(function* () {
      const fields = { host: "127.0.0.1", port: 6263 }
      const json = yield* logged(logWithFields(true, "listening", fields, "listening on 127.0.0.1:6263"))
      assert.deepStrictEqual(json, [{ message: "listening", annotations: fields }])
      const text = yield* logged(logWithFields(false, "listening", fields, "listening on 127.0.0.1:6263"))
      assert.deepStrictEqual(text, [{ message: "listening on 127.0.0.1:6263", annotations: {} }])
    })
  )
})
