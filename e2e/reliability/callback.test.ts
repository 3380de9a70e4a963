/**
 * Row "callback fails, throws, dies, or never returns": logged with its
 * cause, counted, the connection closed (or cut by drainTimeout at stop), and
 * the worker reused. The CLI's callback cannot fail, so this runs the
 * reliability server (`server.ts`), whose callback misbehaves on request and
 * which prints its PoolStats as `stats {json}` lines.
 */
import { afterEach, describe, expect, it } from "vitest"
import { killAll, waitUntil } from "../harness/index.ts"
import { connect, exchange, fdsBackTo, report, settledFds, startScript } from "./harness.ts"

afterEach(killAll)

/**
 * One worker, busy with a callback that never returns; then SIGTERM with a
 * 1 s drainTimeout.
 */
const hangThenStop = async () => {
  const server = await startScript({
    config: { minWorkersCount: 1, maxWorkersCount: 1, drainTimeout: "1 second" },
    statsInterval: 50
  })
  const hung = await connect(server.port)
  await hung.send("hang")
  await waitUntil(() => server.statsLines().at(-1)?.busy === 1, "the hung callback to be busy", 5000)
  const refused = await exchange(server.port, { message: "HI!", timeout: 5000 })
  const stopped = Date.now()
  server.child.kill("SIGTERM")
  const code = await server.exited
  const stopMillis = Date.now() - stopped
  await hung.closed(5000)
  const final = server.statsLines("final-stats").at(-1)!
  const hungClientGot = hung.error()?.code ?? (hung.gotEnd() ? "FIN" : "close")
  return { final, code, stopMillis, hungClientGot, refused: refused.reply, output: server.output() }
}

describe("a misbehaving callback", () => {
  it("fail, throw and die close only their connection, are logged with the cause, counted; the worker is reused", async () => {
    const server = await startScript({
      // One worker that is never retired: if it were not reused, `spawned` would grow,
      // and if it were not freed, the next client would be refused.
      config: { minWorkersCount: 1, maxWorkersCount: 1, idleWorkerTimeout: "1 minute", drainTimeout: "1 second" },
      statsInterval: 50
    })
    const baseline = await settledFds(server)
    const outcomes: Record<string, unknown> = {}
    const verbs: Record<string, string> = { fail: "failed", throw: "threw", die: "died" }
    for (const command of ["fail", "throw", "die"]) {
      const client = await connect(server.port)
      await client.send("HI!")
      expect(await client.receive(2)).toBe("OK")
      await client.send(command)
      await client.closed(5000)
      // The connection is closed with a FIN after what was already answered.
      expect(client.text(), command).toBe("OK")
      expect(client.gotEnd(), command).toBe(true)
      const logged = await server.waitForOutput(
        new RegExp(`WARN.*callback failed; closing its connection.*the callback ${verbs[command]} on purpose`),
        5000
      )
      outcomes[command] = logged[0]
      // The same single worker serves the next client.
      const next = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })
      expect(next.reply, `after ${command}`).toBe("OK")
    }
    const counted = await waitUntil(
      () => {
        const last = server.statsLines().at(-1)
        return last?.callbackFailures === 3 && last.busy === 0
      },
      "callbackFailures = 3 and busy = 0 in the stats",
      5000
    )
    const stats = server.statsLines().at(-1)!
    expect(stats.spawned).toBe(1)
    expect(stats.busy).toBe(0)
    expect(stats.workers).toBe(1)
    await fdsBackTo(server, baseline, 10_000)
    report("callback fail/throw/die", {
      logged: outcomes,
      countedAfterMs: counted,
      callbackFailures: stats.callbackFailures,
      spawned: stats.spawned,
      fdsBefore: baseline,
      fdsAfter: server.fds()
    })
  })

  it("a callback that never returns holds its worker until stop cuts it at drainTimeout; exit 0", async () => {
    const { final, code, stopMillis, hungClientGot, refused } = await hangThenStop()
    report("callback never returns", {
      busyReplyWhileHung: refused,
      hungClientGot,
      interruptedByDrain: final.interruptedByDrain,
      spawned: final.spawned,
      exitCode: code,
      stopMs: stopMillis
    })
    expect(refused).toBe("ERROR_SERVER_BUSY")
    expect(code).toBe(0)
    expect(final.interruptedByDrain).toBe(1)
    expect(final.workers).toBe(0)
    expect(stopMillis).toBeGreaterThanOrEqual(900)
    expect(stopMillis).toBeLessThan(3000)
  })

  it("a callback cut by drainTimeout is logged", async () => {
    const { output } = await hangThenStop()
    expect(output).toMatch(/WARN.*drain/i)
  })
})
