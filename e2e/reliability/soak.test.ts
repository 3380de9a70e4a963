/**
 * The soak script (`npm run soak`, 1,000,000 requests, not run in CI) at a
 * small scale, so it keeps working: 50,000 requests, the same checks.
 */

import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { killAll, spawnNode } from "../harness/index.ts"
import { report } from "./harness.ts"

afterEach(killAll)

const soak = fileURLToPath(new URL("./soak.ts", import.meta.url))

describe("soak script", () => {
  it("50,000 requests: every one answered, heap and fds flat after warm-up, exit 0", async () => {
    const child = await spawnNode([soak, "--requests", "50000", "--warmup", "10000"], { waitForListening: false })
    const code = await child.exited
    const json = /^\{[\s\S]*^\}$/m.exec(child.output())
    const summary = json === null ? undefined : (JSON.parse(json[0]) as { checks: Record<string, boolean> })
    report("soak 50,000", summary ?? { output: child.output() })
    expect(summary?.checks).toEqual({
      everyRequestAnswered: true,
      serverCountedThem: true,
      heapGrowthBelowLimit: true,
      noFdGrowth: true,
      noWorkerLeak: true,
      exitedZero: true
    })
    expect(code).toBe(0)
  })
})
