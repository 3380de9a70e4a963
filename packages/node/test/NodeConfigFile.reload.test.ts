/**
 * `NodeConfigFile.reloadOnSighup` in this process: each SIGHUP re-reads the
 * file and hands its fields to `apply`, and says whether it was applied; an
 * unreadable or invalid file, or an `apply` that fails, is logged at Error
 * level with what is wrong and applies nothing (with or without an `onResult`);
 * after its scope, SIGHUP reaches it no more. The SIGHUP listener is called directly, not through a real signal
 * (which would reach the test runner's own listeners too); NodeConfigFile.test.ts
 * sends real ones to the command.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { ManagerConfig } from "@pool-manager/core"
import { Effect, Exit, Scope } from "effect"
import { NodeConfigFile } from "../src/index.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { until } from "./utils/socketPair.ts"

describe("NodeConfigFile reloadOnSighup", () => {
  it.live(
    "each SIGHUP applies the file as it is then; a bad file or a failed apply is logged and applies nothing",
    () =>
      Effect.gen(function* () {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "config-reload-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const file = Path.join(dir, "pool.json")
        const applied: Array<ManagerConfig.Input> = []
        const results: Array<boolean> = []
        const lines: Array<LogLine> = []
        let refuse = false
        const apply = (input: ManagerConfig.Input) =>
          refuse
            ? Effect.fail(new Error("the manager refused it"))
            : Effect.sync(() => {
                applied.push(input)
              })

        const before = process.listeners("SIGHUP")
        const scope = yield* Scope.make()
        yield* Scope.provide(
          NodeConfigFile.reloadOnSighup(file, apply, (ok) => results.push(ok)).pipe(
            Effect.provide(capturingLogs(lines))
          ),
          scope
        )
        const added = process.listeners("SIGHUP").filter((listener) => !before.includes(listener))
        assert.strictEqual(added.length, 1, "one SIGHUP listener")
        const sighup = added[0] as () => void
        /** Sends a SIGHUP and waits until its reload reported. */
        const reload = (count: number) =>
          Effect.suspend(() => {
            sighup()
            return until(() => results.length === count, `reload ${count} to finish`)
          })

        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 50, clientsDeadline: "5s" }))
        yield* reload(1)
        assert.deepStrictEqual(results, [true])
        assert.strictEqual(applied.length, 1)
        assert.strictEqual(applied[0]!.maxWorkersCount, 50)
        assert.deepStrictEqual(
          lines.map((line) => [line.level, line.message]),
          [["Info", "SIGHUP: reloading the config file"]]
        )

        // The file as it is at each signal.
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 60 }))
        yield* reload(2)
        assert.deepStrictEqual(
          applied.map((input) => input.maxWorkersCount),
          [50, 60]
        )

        // Invalid: logged with what is wrong, nothing applied.
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: -1 }))
        yield* reload(3)
        // Unreadable.
        Fs.rmSync(file)
        yield* reload(4)
        // A failed apply.
        Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 70 }))
        refuse = true
        yield* reload(5)
        assert.deepStrictEqual(results, [true, true, false, false, false])
        assert.strictEqual(applied.length, 2)
        const errors = lines.filter((line) => line.level === "Error").map((line) => line.message)
        assert.strictEqual(errors.length, 3)
        for (const error of errors) assert.match(error, /^config reload failed, keeping the running configuration: /)
        // Every line of a reload names the file.
        assert.deepStrictEqual(new Set(lines.map((line) => line.annotations.configFile)), new Set([file]))
        assert.match(errors[0]!, /maxWorkersCount/)
        assert.match(errors[1]!, /cannot read it/)
        assert.match(errors[2]!, /the manager refused it$/)

        // After its scope, no listener of its own is left.
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(process.listeners("SIGHUP"), before)
      }).pipe(Effect.scoped)
  )

  it.live("without an onResult, a reload is applied, or logged as failed, all the same", () =>
    Effect.gen(function* () {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "config-reload-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const file = Path.join(dir, "pool.json")
      const applied: Array<ManagerConfig.Input> = []
      const lines: Array<LogLine> = []
      const before = process.listeners("SIGHUP")
      yield* NodeConfigFile.reloadOnSighup(file, (input) => Effect.sync(() => void applied.push(input))).pipe(
        Effect.provide(capturingLogs(lines))
      )
      const sighup = process.listeners("SIGHUP").find((listener) => !before.includes(listener)) as () => void
      const errors = () => lines.filter((line) => line.level === "Error").map((line) => line.message)

      Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 50 }))
      sighup()
      yield* until(() => applied.length === 1, "the valid file to be applied")
      Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: -1 }))
      sighup()
      yield* until(() => errors().length === 1, "the invalid file's error")
      assert.match(
        errors()[0]!,
        /^config reload failed, keeping the running configuration: config file .*maxWorkersCount/
      )
      assert.strictEqual(applied.length, 1)
      assert.strictEqual(applied[0]!.maxWorkersCount, 50)
    }).pipe(Effect.scoped)
  )
})
