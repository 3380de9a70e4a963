/**
 * Row "idle client past clientsDeadline": closed within deadline ± 0.5 s, and
 * its worker is freed. Against the real `pool-manager` CLI.
 */
import { afterEach, describe, expect, it } from "vitest"
import { killAll } from "../harness/index.ts"
import { connect, exchange, fdsBackTo, report, settledFds, startCli } from "./harness.ts"

afterEach(killAll)

describe("clientsDeadline", () => {
  it("closes a silent client 1 s after it connected, and after its last message, and frees its worker", async () => {
    // One worker: a worker that was not freed would make the next client busy.
    const server = await startCli([
      "--clients-deadline",
      "1s",
      "--min-workers",
      "1",
      "--max-workers",
      "1",
      "--idle-worker-timeout",
      "1m"
    ])
    const baseline = await settledFds(server)

    // Silent from the start.
    const started = Date.now()
    const silent = await connect(server.port)
    await silent.closed(5000)
    const silentMillis = silent.closedAt()! - started
    expect(silent.gotEnd(), "closed with a FIN, not a reset").toBe(true)
    expect(silent.error()).toBeUndefined()
    expect(silent.text()).toBe("")

    // Silent after one message: the deadline counts from the wait for the next one.
    const talker = await connect(server.port)
    await talker.send("HI!")
    expect(await talker.receive(2)).toBe("OK")
    const answered = Date.now()
    await talker.closed(5000)
    const talkerMillis = talker.closedAt()! - answered

    // The only worker is free again.
    const next = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })
    expect(next.reply).toBe("OK")

    await fdsBackTo(server, baseline, 10_000)
    report("deadline 1s, one worker", {
      silentClosedAfterMs: silentMillis,
      afterLastMessageClosedAfterMs: talkerMillis,
      nextClientReply: next.reply,
      fdsBefore: baseline,
      fdsAfter: server.fds()
    })
    expect(silentMillis).toBeGreaterThanOrEqual(500)
    expect(silentMillis).toBeLessThanOrEqual(1500)
    expect(talkerMillis).toBeGreaterThanOrEqual(500)
    expect(talkerMillis).toBeLessThanOrEqual(1500)
  })

  it("closes 200 silent clients, each within the deadline ± 0.5 s, and frees every worker", async () => {
    const server = await startCli(["--clients-deadline", "2s", "--max-workers", "200", "--idle-worker-timeout", "1m"])
    const baseline = await settledFds(server)
    const started = Date.now()
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect(server.port)))
    const connectedIn = Date.now() - started
    await Promise.all(clients.map((client) => client.closed(10_000)))
    const times = clients.map((client) => client.closedAt()! - started)
    const min = Math.min(...times)
    const max = Math.max(...times)
    // All 200 workers are free: 200 new clients are all served.
    const replies = await Promise.all(
      Array.from({ length: 200 }, () => exchange(server.port, { message: "HI!", end: true, timeout: 10_000 }))
    )
    await fdsBackTo(server, baseline, 10_000)
    report("deadline 2s, 200 silent clients", {
      connectedInMs: connectedIn,
      closedAfterMsMin: min,
      closedAfterMsMax: max,
      allClosedWithFin: clients.every((client) => client.gotEnd()),
      servedAfterwards: replies.filter((r) => r.reply === "OK").length,
      fdsBefore: baseline,
      fdsAfter: server.fds()
    })
    expect(clients.every((client) => client.gotEnd())).toBe(true)
    expect(min).toBeGreaterThanOrEqual(1500)
    expect(max).toBeLessThanOrEqual(2500 + connectedIn)
    expect(replies.every((r) => r.reply === "OK")).toBe(true)
  })
})
