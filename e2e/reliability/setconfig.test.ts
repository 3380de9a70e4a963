/**
 * Row "setConfig shrinking max and min under load": no busy connection is
 * interrupted, and once the connections above the new max have drained, busy
 * never exceeds the new max again. In-process, with the PoolManager and
 * NodeTcpServer layers and real sockets.
 */
import { PoolManager } from "@pool-manager/core"
import { NodeTcpServer } from "@pool-manager/node"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { sleep, waitUntil } from "../harness/index.ts"
import { type Client, connect, exchange, report } from "./harness.ts"

describe("setConfig under load", () => {
  it("shrinking max 20 → 5 and min 10 → 2 interrupts nobody, and busy stays ≤ 5 once drained", async () => {
    let manager: PoolManager.PoolManager["Service"] | undefined
    const busyInCallback: Array<{ at: number; busy: number }> = []
    // Every message takes 20 ms, and records how many connections were being served.
    const callback: PoolManager.Callback = (conn) =>
      Effect.suspend(() => {
        busyInCallback.push({ at: Date.now(), busy: Effect.runSync(manager!.stats).busy })
        return Effect.sleep("20 millis").pipe(Effect.andThen(Effect.ignore(conn.write("OK"))))
      })
    const scope = Effect.runSync(Scope.make())
    try {
      const context = await Effect.runPromise(
        Layer.build(
          NodeTcpServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
            Layer.provideMerge(
              PoolManager.layer(
                {
                  minWorkersCount: 10,
                  maxWorkersCount: 20,
                  clientsDeadline: "10 seconds",
                  idleWorkerTimeout: "300 millis"
                },
                callback
              )
            )
          )
        ).pipe(Scope.provide(scope))
      )
      manager = Context.get(context, PoolManager.PoolManager)
      const address = Context.get(context, NodeTcpServer.NodeTcpServer).address
      const port = (address as { port: number }).port
      const stats = () => Effect.runSync(manager!.stats)

      // 20 long-lived clients fill the pool; client i sends 10 + 2i requests, so they leave one by one.
      const long: Array<Client> = await Promise.all(Array.from({ length: 20 }, () => connect(port)))
      await waitUntil(() => stats().busy === 20, "20 busy connections", 5000)
      const results = long.map(async (client, i) => {
        let answered = 0
        for (let n = 0; n < 10 + 2 * i; n++) {
          await client.send(`request ${n}`)
          await client.receive(2 * (n + 1), 5000)
          answered++
        }
        const interrupted = client.isClosed()
        client.socket.end()
        await client.closed(5000)
        return { answered, expected: 10 + 2 * i, interrupted }
      })

      await sleep(200)
      const samples: Array<{ at: number; busy: number }> = []
      const sampling = setInterval(() => samples.push({ at: Date.now(), busy: stats().busy }), 2)
      const changedAt = Date.now()
      const applied = await Effect.runPromise(manager.setConfig({ maxWorkersCount: 5, minWorkersCount: 2 }))
      expect([applied.minWorkersCount, applied.maxWorkersCount]).toEqual([2, 5])

      // Newcomers keep arriving, every 10 ms, while the long clients drain and after.
      const newcomers: Array<{ at: number; reply: string }> = []
      let arriving = true
      const arrivals = (async () => {
        while (arriving) {
          const at = Date.now()
          void exchange(port, { message: "HI!", end: true, timeout: 5000 }).then((r) =>
            newcomers.push({ at, reply: r.reply })
          )
          await sleep(10)
        }
      })()
      const outcomes = await Promise.all(results)
      await sleep(500)
      arriving = false
      await arrivals
      await waitUntil(() => stats().busy === 0, "every connection to end", 10_000)
      clearInterval(sampling)

      // The reaper retires idle workers down to the new minimum.
      const shrunk = await waitUntil(() => stats().workers === 2, "workers to shrink to the new minimum", 5000)

      const all = [...samples, ...busyInCallback.filter((s) => s.at >= changedAt)].sort((a, b) => a.at - b.at)
      const drainedAt = all.find((s) => s.busy <= 5)?.at ?? Number.POSITIVE_INFINITY
      const overAfterDrain = all.filter((s) => s.at > drainedAt && s.busy > 5)
      const admitted = newcomers.filter((n) => n.reply === "OK")
      const refused = newcomers.filter((n) => n.reply === "ERROR_SERVER_BUSY")
      const final = stats()
      report("setConfig 20→5 / 10→2 under load", {
        longClientsFullyAnswered: outcomes.filter((o) => o.answered === o.expected && !o.interrupted).length,
        busySamples: all.length,
        busyMaxAfterChange: Math.max(...all.map((s) => s.busy)),
        drainedAfterMs: drainedAt - changedAt,
        busyAbove5AfterDrain: overAfterDrain.length,
        busyMaxAfterDrain: Math.max(0, ...all.filter((s) => s.at > drainedAt).map((s) => s.busy)),
        newcomersAdmitted: admitted.length,
        newcomersRefused: refused.length,
        newcomersOther: newcomers.length - admitted.length - refused.length,
        workersShrunkTo2AfterMs: shrunk,
        stats: { workers: final.workers, spawned: final.spawned, retired: final.retired, rejected: final.rejected }
      })
      for (const outcome of outcomes) {
        expect(outcome.interrupted).toBe(false)
        expect(outcome.answered).toBe(outcome.expected)
      }
      expect(overAfterDrain).toEqual([])
      expect(refused.length).toBeGreaterThan(0)
      expect(admitted.length).toBeGreaterThan(0)
      expect(newcomers.length - admitted.length - refused.length).toBe(0)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
