/**
 * What the browser tests share: Debian's Chromium driven headless by
 * `puppeteer-core` (a missing browser fails the test), and connections held
 * open for as long as a scope.
 */

import * as Fs from "node:fs"
import * as Net from "node:net"
import { Effect } from "effect"
import * as Puppeteer from "puppeteer-core"

/** The browser: Debian's Chromium, or `CHROMIUM`. */
export const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium"

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
