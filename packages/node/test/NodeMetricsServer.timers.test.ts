/**
 * The metrics endpoint's header deadlines do not keep the process alive: a
 * client connected to it, waiting on its deadline, holds no referenced timer
 * (an operator's process still exits when everything else is done).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeMetricsServer } from "../src/index.ts"
import { connect, portOf } from "./utils/client.ts"
import { referencedTimers } from "./utils/resources.ts"

describe("NodeMetricsServer timers", () => {
  it.live("a connection's header deadline is not a referenced timer", () =>
    Effect.gen(function* () {
      const server = yield* NodeMetricsServer.make({
        port: 0,
        health: Effect.succeed({ healthy: true, detail: "ok" }),
        headersTimeout: "30 seconds"
      })
      const port = portOf(server.address)
      yield* Effect.sleep("100 millis")
      const before = referencedTimers()
      yield* Effect.forEach(Array.from({ length: 3 }), () => connect(port))
      // The server has taken the connections (and armed their deadlines) once they are open on its side.
      yield* Effect.sleep("100 millis")
      // (Fewer may be left than before: the server's own start-up timers end meanwhile.)
      assert.isAtMost(referencedTimers(), before, "three connections waiting on their headers hold no referenced timer")
    }).pipe(Effect.scoped)
  )
})
