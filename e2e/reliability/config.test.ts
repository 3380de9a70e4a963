/**
 * Row "invalid config through API and CLI (negative, NaN, text, min > max)":
 * a clear error naming the field; a live `setConfig` keeps the old config.
 * The API in-process (`PoolManager.make`), the CLI as a child process.
 */
import { ManagerConfig, MemoryConnection, PoolManager } from "@pool-manager/core"
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { cliBin, killAll, spawnNode } from "../harness/index.ts"
import { report } from "./harness.ts"

afterEach(killAll)

const callback: PoolManager.Callback = (conn, _body, len) => Effect.ignore(conn.write(len > 0 ? "OK" : "ERROR"))

/** Inputs the type checker would reject, as a JavaScript caller or a config file can pass them. */
const invalid: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
  ["maxWorkersCount", { maxWorkersCount: -1 }],
  ["maxWorkersCount", { maxWorkersCount: Number.NaN }],
  ["maxWorkersCount", { maxWorkersCount: "ten" }],
  ["maxWorkersCount", { maxWorkersCount: 2.5 }],
  ["maxWorkersCount", { maxWorkersCount: Number.POSITIVE_INFINITY }],
  ["minWorkersCount", { minWorkersCount: 5, maxWorkersCount: 2 }],
  ["bufferSize", { bufferSize: -5120 }],
  ["maxMessageBytes", { maxMessageBytes: 0 }],
  ["clientsDeadline", { clientsDeadline: -1 }],
  ["clientsDeadline", { clientsDeadline: "soon" }],
  ["drainTimeout", { drainTimeout: "NaN millis" }],
  ["idleWorkerTimeout", { idleWorkerTimeout: "-2 seconds" }],
  ["admissionPolicy", { admissionPolicy: "drop" }],
  ["queueSize", { queueSize: -1 }],
  ["maxConnectionsPerAddress", { maxConnectionsPerAddress: "many" }],
  ["debug", { debug: "yes" }],
  ["maxWorkerCount", { maxWorkerCount: 10 }]
]

const show = (input: unknown): string =>
  JSON.stringify(input, (_key, value) => (typeof value === "number" && !Number.isFinite(value) ? `${value}` : value))

const failure = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit)
    ? (exit.cause.reasons.find((r) => r._tag === "Fail") as { error: E } | undefined)?.error
    : undefined

describe("invalid configuration", () => {
  it("PoolManager.make rejects each invalid field with a ConfigError naming it", async () => {
    const messages: Record<string, string> = {}
    for (const [field, input] of invalid) {
      const exit = await Effect.runPromiseExit(Effect.scoped(PoolManager.make(input as ManagerConfig.Input, callback)))
      const error = failure(exit)
      expect(error?._tag, JSON.stringify(input)).toBe("ConfigError")
      expect(error?.message, JSON.stringify(input)).toContain(field)
      messages[show(input)] = error!.message
    }
    report("invalid config, API", messages)
  })

  it("a live setConfig with an invalid field fails and keeps the old config, all of it", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* PoolManager.make(
            { minWorkersCount: 2, maxWorkersCount: 4, clientsDeadline: "5 seconds" },
            callback
          )
          yield* manager.start
          const before = ManagerConfig.toJson(yield* manager.config)
          const rejected: Record<string, string> = {}
          for (const [field, input] of [
            ...invalid,
            // Valid alone, but not with the running minimum of 2.
            ["minWorkersCount", { maxWorkersCount: 1 }] as const,
            // One valid and one invalid field: neither is applied.
            ["minWorkersCount", { maxWorkersCount: 8, minWorkersCount: -1 }] as const
          ]) {
            const exit = yield* Effect.exit(manager.setConfig(input as ManagerConfig.Input))
            const error = failure(exit)
            expect(error?._tag, JSON.stringify(input)).toBe("ConfigError")
            expect(error?.message, JSON.stringify(input)).toContain(field)
            expect(ManagerConfig.toJson(yield* manager.config), JSON.stringify(input)).toEqual(before)
            rejected[show(input)] = error!.message
          }
          // Still running, with the old limits.
          const { client, connection } = yield* MemoryConnection.make()
          yield* manager.put(connection)
          yield* client.send("HI!")
          expect(yield* client.receiveText).toBe("OK")
          const stats = yield* manager.stats
          expect(stats.running).toBe(true)
          expect(stats.workers).toBeGreaterThanOrEqual(2)
          report("invalid setConfig keeps the old config", {
            kept: before,
            rejectedCount: Object.keys(rejected).length,
            workers: stats.workers
          })
        })
      )
    )
  })

  it("a NaN duration is rejected by make and by a live setConfig, naming the field", async () => {
    const fields = ["drainTimeout", "idleWorkerTimeout", "queueTimeout", "clientsDeadline"] as const
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          for (const field of fields) {
            const error = failure(yield* Effect.exit(PoolManager.make({ [field]: Number.NaN }, callback)))
            expect(error?.message, field).toContain(field)
          }
          const manager = yield* PoolManager.make({ drainTimeout: "10 seconds" }, callback)
          yield* manager.start
          const error = failure(yield* Effect.exit(manager.setConfig({ drainTimeout: Number.NaN })))
          expect(error?.message).toContain("drainTimeout")
          expect(ManagerConfig.toJson(yield* manager.config).drainTimeout).toBe(10_000)
        })
      )
    )
  })

  it("the CLI rejects negative, NaN, text and min > max values with exit code 2 (usage) and the flag's name", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
      [["--max-workers", "-1"], ["--max-workers"]],
      [["--max-workers", "NaN"], ["--max-workers"]],
      [["--max-workers", "ten"], ["--max-workers"]],
      [
        ["--min-workers", "5", "--max-workers", "2"],
        ["--min-workers", "--max-workers"]
      ],
      [["--buffer-size", "-1"], ["--buffer-size"]],
      [["--clients-deadline=-1s"], ["--clients-deadline"]],
      [["--drain-timeout", "soon"], ["--drain-timeout"]],
      [["--port", "70000"], ["--port"]]
    ]
    const results = await Promise.all(
      cases.map(async ([args]) => {
        const port = args.some((arg) => arg.startsWith("--port")) ? [] : ["--port", "0"]
        const child = await spawnNode([cliBin, ...port, ...args], { waitForListening: false })
        const code = await child.exited
        return { code, output: child.output() }
      })
    )
    const summary: Record<string, string> = {}
    results.forEach(({ code, output }, i) => {
      const [args, mentions] = cases[i]!
      const name = args.join(" ")
      expect(code, name).toBe(2)
      for (const mention of mentions) expect(output, name).toContain(mention)
      expect(output, name).not.toContain("listening on")
      summary[name] =
        output
          .split("\n")
          .find((line) => mentions.some((m) => line.includes(m)) && !line.trimStart().startsWith("--"))
          ?.trim() ?? ""
    })
    report("invalid config, CLI", summary)
  })
})
