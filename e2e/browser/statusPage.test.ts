/**
 * The status page in a real browser: the `pool-manager` command with a
 * metrics port, its page opened in headless Chromium. The page must load and
 * poll with no console error; its busy figure must rise while the test holds
 * connections and fall after they close. The screenshot taken while they are
 * held is the README's (`UPDATE_SCREENSHOTS=1` writes it to
 * `docs/status-page.png`; otherwise it goes to a temporary folder).
 */

import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { repoRoot, tempDir } from "../harness/index.ts"
import { browser, hold, openPage, spawnCli } from "./harness.ts"

const screenshot = process.env.UPDATE_SCREENSHOTS
  ? Path.join(repoRoot, "docs/status-page.png")
  : Path.join(tempDir("status-page-"), "status-page.png")

describe("status page", () => {
  it.live("loads without console errors; busy rises while connections are held and falls after", () =>
    Effect.gen(function* () {
      const server = yield* spawnCli(["--port", "0", "--metrics-port", "0", "--max-workers", "4"])
      const port = Number((yield* server.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1])
      const url = (yield* server.waitFor(/status page at (http:\/\/127\.0\.0\.1:\d+)\//))[1]!

      const chrome = yield* browser
      const { page, problems, text, waitForText } = yield* openPage(chrome)
      yield* Effect.promise(() => page.setViewport({ width: 1280, height: 900 }))
      const response = yield* Effect.promise(() => page.goto(`${url}/?interval=250`, { waitUntil: "load" }))
      assert.strictEqual(response?.status(), 200)

      yield* waitForText("state", "running")
      assert.strictEqual(yield* text("busy"), "0")
      assert.strictEqual(yield* text("max"), "4")

      yield* Effect.scoped(
        Effect.gen(function* () {
          // Four held connections fill the pool; two more are refused (rejected / s rises).
          for (let i = 0; i < 4; i++) yield* hold(port, "HI!")
          yield* waitForText("busy", "4")
          for (let i = 0; i < 2; i++) yield* hold(port)
          yield* Effect.sleep("1500 millis")
          assert.strictEqual(yield* text("busy"), "4")
          assert.strictEqual(yield* text("idle"), "0")
          yield* Effect.promise(() => page.screenshot({ path: screenshot, fullPage: true }))
        })
      )
      yield* waitForText("busy", "0")

      const config = yield* text("config")
      assert.include(config, "maxWorkersCount")
      assert.include(config, "clientsDeadline3000")
      assert.deepStrictEqual(problems, [])
      assert.isAbove(Fs.statSync(screenshot).size, 10_000, "the screenshot has content")
    }).pipe(Effect.scoped)
  )
})
