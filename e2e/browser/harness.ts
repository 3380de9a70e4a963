/**
 * What the browser tests share: Debian's Chromium driven headless by
 * `puppeteer-core` (a missing browser fails the test), a page that collects
 * its console problems, and the `pool-manager` command and connections held
 * open for as long as a scope. The process itself is started by the e2e
 * harness (`../harness/`), as in the other suites.
 */

import * as Fs from "node:fs"
import * as Net from "node:net"
import { Effect } from "effect"
import * as Puppeteer from "puppeteer-core"
import { cliBin, spawnNode } from "../harness/index.ts"

// The part of the DOM the page functions below use (they run in the browser; the project's lib has no DOM).
declare const document: { querySelector(selector: string): { readonly textContent: string | null } | null }

/** The browser: Debian's Chromium, or `CHROMIUM`. */
export const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium"

/** `pool-manager` with `flags`, killed when the scope closes; `waitFor` resolves with a match in its output. */
export const spawnCli = (flags: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(() => spawnNode([cliBin, ...flags], { waitForListening: false })),
    (server) => Effect.promise(() => server.stop("SIGKILL"))
  ).pipe(
    Effect.map((server) => ({
      ...server,
      waitFor: (pattern: RegExp) =>
        Effect.tryPromise({ try: () => server.waitForOutput(pattern), catch: (cause) => cause as Error })
    }))
  )

/** Opens a connection to 127.0.0.1:`port` that stays open until the scope closes; resolves once connected. */
export const hold = (port: number, send?: string) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.connect(port, "127.0.0.1", () => {
        if (send !== undefined) socket.write(send)
        resume(Effect.succeed(socket))
      })
      socket.on("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Headless Chromium, closed with the scope. */
export const browser = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => {
      if (!Fs.existsSync(chromium)) {
        throw new Error(`no browser at ${chromium}: install Debian's chromium (apt-get install chromium)`)
      }
      return Puppeteer.launch({
        executablePath: chromium,
        headless: true,
        // Root in CI, and a machine with no network: no sandbox, no background fetches.
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync"
        ]
      })
    },
    catch: (cause) => new Error(`cannot start Chromium: ${String(cause)}`)
  }),
  (instance) => Effect.promise(() => instance.close())
)

/**
 * A new page of `chrome` that collects every console error or warning, page
 * error and failed request in `problems` (a test expects none), with the text
 * of an element by id: now (`text`) or once it reads `expected`
 * (`waitForText`, 15 s at most).
 */
export const openPage = (chrome: Puppeteer.Browser) =>
  Effect.gen(function* () {
    const page = yield* Effect.promise(() => chrome.newPage())
    const problems: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warn") problems.push(`console: ${message.text()}`)
    })
    page.on("pageerror", (error) => problems.push(`page error: ${String(error)}`))
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`))
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
    return { page, problems, text, waitForText }
  })
