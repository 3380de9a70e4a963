/**
 * The shipped `pool-manager` bin starts with V8's young generation capped
 * (`--max-semi-space-size=16`, see bin/pool-manager.ts): it replaces itself
 * with the flag added, keeping its process id, and leaves a setting it was
 * started with alone.
 */
import * as Fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, spawnNode } from "./utils/cliProcess.ts"

// The arguments the process runs with now (Linux).
const commandLine = (pid: number) => Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean)

const serve = (nodeFlags: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const child = yield* spawnNode([...nodeFlags, bin, "--port", "0"])
    const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
    const client = yield* connect(port)
    yield* client.send("HI!")
    assert.strictEqual(yield* client.receive(2), "OK")
    return commandLine(child.process.pid!)
  })

describe("pool-manager bin", () => {
  it.live(
    "runs with --max-semi-space-size=16 in the same process, and keeps a value given to Node",
    () =>
      Effect.gen(function* () {
        const shipped = yield* serve([])
        assert.include(shipped, "--max-semi-space-size=16", shipped.join(" "))
        // The flag goes before the script, with the command's own arguments after it.
        assert.deepStrictEqual(shipped.slice(-3), [bin, "--port", "0"])

        const chosen = yield* serve(["--max-semi-space-size=0"])
        assert.include(chosen, "--max-semi-space-size=0", chosen.join(" "))
        assert.notInclude(chosen, "--max-semi-space-size=16", chosen.join(" "))
      }).pipe(Effect.scoped),
    60_000
  )
})
