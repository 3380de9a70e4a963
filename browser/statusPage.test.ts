/**
 * The status page in a real browser: the `pool-manager` command with a
 * metrics port, its page opened in headless Chromium. The page must load and
 * poll with no console error; its busy figure must rise while the test holds
 * connections and fall after they close. The screenshot taken while they are
 * held is the README's (`UPDATE_SCREENSHOTS=1` writes it to
 * `docs/status-page.png`; otherwise it goes to a temporary folder).
 */

import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bin, spawnNode } from "../packages/node/test/utils/cliProcess.ts"
import { browser, hold } from "./harness.ts"

// The part of the DOM the page functions below use (they run in the browser; the project's lib has no DOM).
declare const document: { querySelector(selector: string): { readonly textContent: string | null } | null }

const screenshot = process.env.UPDATE_SCREENSHOTS
  ? fileURLToPath(new URL("../docs/status-page.png", import.meta.url))
  : Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "status-page-")), "status-page.png")

describe("status page", () => {
  it.live("loads without console errors; busy rises while connections are held and falls after", () =>
    Effect.gen(function* () {
      const server = yield* spawnNode([bin, "--port", "0", "--metrics-port", "0", "--max-workers", "4"])
      const port = Number((yield* server.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1])
      const url = (yield* server.waitFor(/status page at (http:\/\/127\.0\.0\.1:\d+)\//))[1]!

      const chrome = yield* browser
      const page = yield* Effect.promise(() => chrome.newPage())
      const problems: Array<string> = []
      page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warn") problems.push(`console: ${message.text()}`)
      })
      page.on("pageerror", (error) => problems.push(`page error: ${String(error)}`))
      page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`))
      yield* Effect.promise(() => page.setViewport({ width: 1280, height: 900 }))
      const response = yield* Effect.promise(() => page.goto(`${url}/?interval=250`, { waitUntil: "load" }))
      assert.strictEqual(response?.status(), 200)

      const text = (id: string) => Effect.promise(() => page.$eval(`#${id}`, (element) => element.textContent ?? ""))
      const waitForText = (id: string, expected: string) =>
        Effect.promise(() =>
          page.waitForFunction(
            (selector, value) => document.querySelector(selector)?.textContent === value,
            { timeout: 15_000, polling: 50 },
            `#${id}`,
            expected
          )
        )

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
