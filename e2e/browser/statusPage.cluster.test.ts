/**
 * The status page of `pool-manager --processes 2` in headless Chromium: the
 * figures add the two processes up (max workers 2 × 2), a row per process
 * shows each one's share, and held connections show in both.
 */

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { get } from "../harness/index.ts"
import { browser, hold, openPage, spawnCli } from "./harness.ts"

// The part of the DOM the row function below uses (it runs in the browser; the project's lib has no DOM).
interface Row {
  querySelectorAll(selector: string): ArrayLike<{ readonly textContent: string | null }>
}

describe("status page with --processes 2", () => {
  it.live("adds the processes up, with a row per process, and follows held connections", () =>
    Effect.gen(function* () {
      // The primary hands connections over in turn, so three held connections fit two processes of two workers.
      const server = yield* spawnCli([
        ...["--port", "0", "--metrics-port", "0", "--max-workers", "2", "--clients-deadline", "60s"],
        ...["--processes", "2", "--cluster-mode", "handoff"]
      ])
      const port = Number((yield* server.waitFor(/primary: 2 processes listening on 127\.0\.0\.1:(\d+)/))[1])
      const url = (yield* server.waitFor(/status page at (http:\/\/127\.0\.0\.1:\d+)\//))[1]!

      // /stats.json itself: the sum and the rows.
      const stats = JSON.parse((yield* Effect.promise(() => get(`${url}/stats.json`))).body) as {
        config: { maxWorkersCount: number }
        processes: Array<{ process: number; stats?: { running: boolean } }>
      }
      assert.strictEqual(stats.config.maxWorkersCount, 4)
      assert.deepStrictEqual(
        stats.processes.map((row) => [row.process, row.stats?.running]),
        [
          [1, true],
          [2, true]
        ]
      )

      const chrome = yield* browser
      const { page, problems, text, waitForText } = yield* openPage(chrome)
      const response = yield* Effect.promise(() => page.goto(`${url}/?interval=250`, { waitUntil: "load" }))
      assert.strictEqual(response?.status(), 200)

      // Each process's row: [process, state, workers, busy, idle, waiting, max, accepted, rejected].
      const rows = Effect.promise(() =>
        page.$$eval("#processes tr[data-process]", (trs) =>
          trs.map((tr) => Array.from((tr as unknown as Row).querySelectorAll("td"), (td) => td.textContent ?? ""))
        )
      )

      yield* waitForText("state", "running")
      assert.strictEqual(yield* text("max"), "4")
      assert.isFalse(yield* Effect.promise(() => page.$eval("#processesSection", (element) => element.hidden)))
      const idle = yield* rows
      assert.deepStrictEqual(
        idle.map((row) => [row[0], row[1], row[6]]),
        [
          ["1", "running", "2"],
          ["2", "running", "2"]
        ]
      )

      yield* Effect.scoped(
        Effect.gen(function* () {
          for (let i = 0; i < 3; i++) yield* hold(port, "HI!")
          yield* waitForText("busy", "3")
          const busy = yield* rows
          const perProcess = busy.map((row) => Number(row[3]))
          assert.strictEqual(
            perProcess.reduce((a, b) => a + b, 0),
            3,
            JSON.stringify(busy)
          )
          assert.isTrue(
            perProcess.every((n) => n >= 1),
            `both processes serve: ${JSON.stringify(busy)}`
          )
        })
      )
      yield* waitForText("busy", "0")
      assert.deepStrictEqual(problems, [])
    }).pipe(Effect.scoped)
  )
})
