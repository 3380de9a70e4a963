/**
 * `--framing` and the config file's `framing`: parsed into the configuration,
 * rejected with the flag's name when bad, and served by the real command.
 */

import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Framing } from "@pool-manager/core"
import { Effect, Option } from "effect"
import { Command } from "effect/cli"
import { NetAddress } from "effect/net"
import { NodeCli, NodeCliConfig, NodeConfigFile } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { bin, noFlags, spawnNode } from "./utils/cliProcess.ts"

describe("NodeCli --framing", () => {
  it.effect("rejects a bad spec naming the flag and what it takes", () =>
    Effect.gen(function* () {
      const cli = Command.runWith(NodeCli.command({ callback: () => Effect.void }), { version: "test" })
      for (const spec of ["length:3", "lines:x", "custom:resp"]) {
        const error = yield* Effect.flip(cli(["--framing", spec]))
        const messages = error._tag === "ShowHelp" ? error.errors.map((e) => e.message).join("\n") : ""
        assert.include(messages, "--framing", spec)
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it("sets the framing from the flag over the defaults, and shows it in the listening line", () => {
    const config = Effect.runSync(
      NodeCliConfig.makeConfig(
        { ...noFlags, framing: Option.some(Framing.lengthField({ lengthFieldLength: 4 })) },
        { framing: "lines" }
      )
    )
    assert.deepStrictEqual(config.manager.framing, Framing.lengthField({ lengthFieldLength: 4 }))
    const line = NodeCliConfig.listeningLine(
      "pool-manager",
      NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6263),
      config.manager
    )
    assert.include(line, "framing=length:4:be")
    // A custom framing, given in code as a default, is shown by its name.
    const custom = Framing.custom("resp", () => ({ decode: () => ({ frames: [], consumed: 0 }) }))
    const defaulted = Effect.runSync(NodeCliConfig.makeConfig(noFlags, { framing: custom }))
    assert.strictEqual(defaulted.manager.framing, custom)
  })

  it.effect("the config file takes a framing spec, and names the file for a bad one", () =>
    Effect.gen(function* () {
      const input = yield* NodeConfigFile.parse('{ "framing": "delimiter:\\\\r\\\\n:512" }', "pool.json")
      assert.strictEqual(input.framing, "delimiter:\\r\\n:512")
      const error = yield* Effect.flip(NodeConfigFile.parse('{ "framing": "length:5" }', "pool.json"))
      assert.include(error.message, "pool.json")
      assert.include(error.message, "framing")
    })
  )

  it.live(
    "the command frames by lines: one write of two lines gets two replies",
    () =>
      Effect.gen(function* () {
        const child = yield* spawnNode([bin, "--port", "0", "--framing", "lines"])
        const match = yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) .*framing=lines/)
        const client = yield* connect(Number(match[1]))
        yield* client.send("one\r\ntwo\n\nthr")
        assert.strictEqual(yield* client.receive(9), "OKOKERROR")
        yield* client.send("ee\n")
        assert.strictEqual(yield* client.receive(11), "OKOKERROROK")
        child.process.kill("SIGINT")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
