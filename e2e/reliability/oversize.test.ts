/**
 * Row "a message over maxMessageBytes": the connection is closed, the reason
 * is logged (a Warning line, shown without --debug), and the worker is freed.
 * Against the real `pool-manager` CLI.
 */
import { afterEach, describe, expect, it } from "vitest"
import { killAll } from "../harness/index.ts"
import { connect, exchange, fdsBackTo, report, settledFds, startCli } from "./harness.ts"

afterEach(killAll)

const warning = /WARN.*message larger than maxMessageBytes/

describe("maxMessageBytes", () => {
  it("closes the connection of a message one byte too large, logs why, and frees the worker", async () => {
    // One worker, so a worker that was not freed would turn the next client away.
    const server = await startCli([
      "--max-message-bytes",
      "10000",
      "--min-workers",
      "1",
      "--max-workers",
      "1",
      "--idle-worker-timeout",
      "1m"
    ])
    const baseline = await settledFds(server)

    // Exactly the limit is a message like any other.
    const fits = await exchange(server.port, { message: Buffer.alloc(10_000, 0x61), end: true, timeout: 5000 })
    expect(fits.reply).toBe("OK")
    expect(server.output()).not.toMatch(warning)

    // One byte more, sent as one write: closed without a reply.
    const client = await connect(server.port)
    const started = Date.now()
    await client.send(Buffer.alloc(10_001, 0x62))
    await client.closed(5000)
    const closedAfter = client.closedAt()! - started
    expect(client.text()).toBe("")
    expect(client.gotEnd(), "closed with a FIN").toBe(true)
    const logged = await server.waitForOutput(warning, 5000)

    // Much larger, while the client keeps writing.
    const big = await connect(server.port)
    void big.send(Buffer.alloc(5 * 1024 * 1024, 0x63))
    await big.closed(10_000)
    expect(big.text()).toBe("")

    // The only worker is free.
    const next = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })
    expect(next.reply).toBe("OK")
    await fdsBackTo(server, baseline, 10_000)
    report("maxMessageBytes 10000", {
      exactlyTheLimit: fits.reply,
      oneByteOverClosedAfterMs: closedAfter,
      oneByteOverReply: client.text(),
      fiveMbClosedWith: big.error() ?? "FIN",
      logLine: logged[0],
      nextClientReply: next.reply,
      fdsBefore: baseline,
      fdsAfter: server.fds()
    })
    expect(server.output().match(new RegExp(warning, "g"))?.length).toBe(2)
  })
})
