/**
 * Row "5,000 connections beyond max, opened at once": each gets
 * ERROR_SERVER_BUSY and a close; the server's open fds return to baseline.
 * Against the real `pool-manager` CLI with the Go original's pool (min 5, max 10).
 */
import { afterEach, describe, expect, it } from "vitest"
import { killAll } from "../harness/index.ts"
import { connect, exchange, fdsBackTo, mb, report, sampler, settledFds, startCli } from "./harness.ts"

afterEach(killAll)

const beyond = 5000

describe("overload", () => {
  it(`refuses ${beyond} connections beyond max with ERROR_SERVER_BUSY, and its fds return to baseline`, async () => {
    const server = await startCli(["--min-workers", "5", "--max-workers", "10", "--clients-deadline", "2m"])
    const baseline = await settledFds(server)
    const rssBefore = server.rss()

    // Ten clients that keep every worker busy (and prove they were admitted).
    const holders = await Promise.all(Array.from({ length: 10 }, () => connect(server.port)))
    for (const holder of holders) await holder.send("HI!")
    for (const holder of holders) expect(await holder.receive(2)).toBe("OK")

    const fds = sampler(() => server.fds(), 50)
    const rss = sampler(() => server.rss(), 100)
    const started = Date.now()
    // Opened in one synchronous loop: the server's accept backlog overflows
    // and the kernel retries SYNs, as it would for a real burst.
    const outcomes = await Promise.all(
      Array.from({ length: beyond }, () => exchange(server.port, { message: "HI!", timeout: 60_000 }))
    )
    const elapsed = Date.now() - started
    fds.stop()
    rss.stop()

    const refused = outcomes.filter((o) => o.reply === "ERROR_SERVER_BUSY" && o.closed && o.error === undefined)
    const others = outcomes.filter((o) => !refused.includes(o))
    const kinds = new Map<string, number>()
    for (const o of others) {
      const key = `${JSON.stringify(o.reply)} closed=${o.closed} error=${o.error}`
      kinds.set(key, (kinds.get(key) ?? 0) + 1)
    }

    // The holders were never disturbed.
    for (const holder of holders) await holder.send("again")
    for (const holder of holders) expect(await holder.receive(4)).toBe("OKOK")
    for (const holder of holders) holder.socket.end()
    await Promise.all(holders.map((holder) => holder.closed(5000)))
    const back = await fdsBackTo(server, baseline, 20_000)
    const after = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })

    report("5000 beyond max", {
      refusedWithBusyAndClose: refused.length,
      other: Object.fromEntries(kinds),
      allDoneInMs: elapsed,
      slowestMs: Math.max(...outcomes.map((o) => o.millis)),
      fdsBefore: baseline,
      fdsPeak: fds.max(),
      fdsAfter: server.fds(),
      fdsBackToBaselineAfterMs: back,
      rssBefore: mb(rssBefore),
      rssPeak: mb(rss.max()),
      servedAfterwards: after.reply
    })
    expect(Object.fromEntries(kinds)).toEqual({})
    expect(refused.length).toBe(beyond)
    expect(after.reply).toBe("OK")
    expect(server.isRunning()).toBe(true)
  })
})
