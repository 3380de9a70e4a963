/**
 * The command's log level without `--log-level`, in this process
 * (internal/cliCommand.ts): with `--debug` the pool's Debug lines are
 * written; with a config file the callback's Debug lines stay off until a
 * reload turns `debug` on, and from then on they are written (the floor lets
 * Debug through whenever a reload could turn it on, the level follows the
 * reloaded setting); with neither, a Debug line is not even an event of the
 * callback's span. The reload is a call of the SIGHUP listener the server
 * installed.
 */
import * as Fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Tracer } from "effect"
import { connect } from "./utils/client.ts"
import { configFile } from "./utils/cliProcess.ts"
import { type Options, startCommand } from "./utils/command.ts"
import { installedListener } from "./utils/signals.ts"
import { until } from "./utils/socketPair.ts"

/** The callback's own Debug line, and the events its span got (as the default tracer keeps them). */
const debugLine = "the callback at Debug"
const spanEvents: Array<string> = []
const callback: Options["callback"] = (conn) =>
  Effect.gen(function* () {
    yield* Effect.logDebug(debugLine)
    const span = yield* Effect.orDie(Effect.currentSpan)
    if (span instanceof Tracer.NativeSpan) spanEvents.push(...span.events.map(([name]) => name))
    yield* Effect.ignore(conn.write("OK"))
  }).pipe(Effect.withSpan("levels.callback"))

/** The command on 127.0.0.1, a free port and `args`, listening. */
const listening = (args: ReadonlyArray<string>) =>
  startCommand(["--host", "127.0.0.1", "--port", "0", ...args], { name: "levels", callback })

/** One client's message answered, then the connection closed by the client. */
const exchange = (port: number) =>
  Effect.gen(function* () {
    const client = yield* connect(port)
    yield* client.send("hello\n")
    assert.strictEqual(yield* client.receive(2), "OK")
  }).pipe(Effect.scoped)

const closedLines = (out: ReadonlyArray<string>) => out.filter((line) => line.includes("connection closed"))
const debugLines = (out: ReadonlyArray<string>) => out.filter((line) => line.includes(debugLine))

describe("NodeCli log level", { timeout: 15_000 }, () => {
  it.live("--debug writes the pool's Debug lines", () =>
    Effect.gen(function* () {
      const server = yield* listening(["--debug"])
      yield* exchange(server.port)
      yield* until(() => closedLines(server.out).length > 0, "a Debug line for the closed connection")
      assert.match(closedLines(server.out)[0]!, /DEBUG/)
      yield* Fiber.interrupt(server.fiber)
    })
  )

  it.live("with a config file, Debug lines are off until a reload turns debug on", () =>
    Effect.gen(function* () {
      const file = yield* configFile("maxWorkersCount: 4\n")
      const before = process.listeners("SIGHUP")
      const server = yield* listening(["--config", file])
      yield* exchange(server.port)

      Fs.writeFileSync(file, "maxWorkersCount: 4\ndebug: true\n")
      installedListener("SIGHUP", before)()
      yield* until(() => server.out.some((line) => line.includes("config reloaded")), "the reload's line")
      yield* exchange(server.port)
      yield* until(() => debugLines(server.out).length > 0, "the callback's Debug line after the reload")
      // The first message was handled before the reload, with Debug off: only the second one's line.
      assert.strictEqual(debugLines(server.out).length, 1, server.out.join("\n"))
      yield* Fiber.interrupt(server.fiber)
    }).pipe(Effect.scoped)
  )

  it.live("with neither --debug nor a config file, a Debug line is not even an event of the callback's span", () =>
    Effect.gen(function* () {
      spanEvents.length = 0
      const server = yield* listening(["--max-workers", "2"])
      yield* exchange(server.port)
      yield* Fiber.interrupt(server.fiber)
      assert.deepStrictEqual(debugLines(server.out), [])
      assert.deepStrictEqual(spanEvents, [])

      // With --debug, the same line is written and is an event of the span.
      const debugging = yield* listening(["--debug"])
      yield* exchange(debugging.port)
      yield* Fiber.interrupt(debugging.fiber)
      assert.strictEqual(debugLines(debugging.out).length, 1)
      assert.deepStrictEqual(spanEvents, [debugLine])
    })
  )
})
