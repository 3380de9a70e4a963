/**
 * Row "2,000 connections reset mid-read, half-open clients, clients that
 * vanish without FIN": the server keeps serving and its fds return to
 * baseline. Against the real `pool-manager` CLI.
 */
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { killAll, sleep } from "../harness/index.ts"
import { type Client, connect, exchange, fdsBackTo, random, report, sampler, settledFds, startCli } from "./harness.ts"

afterEach(killAll)

/**
 * Connects, writes part of a message, and resets the connection (RST) after
 * `delay` ms: while the server reads, waits for the rest, or answers.
 */
const resetMidRead = (port: number, bytes: Buffer, delay: number) =>
  new Promise<string>((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    socket.on("error", () => {})
    socket.on("close", () => resolve("closed"))
    socket.on("connect", () => {
      socket.write(bytes)
      if (delay === 0) socket.resetAndDestroy()
      else setTimeout(() => socket.resetAndDestroy(), delay)
    })
  })

describe("resets and half-open connections", () => {
  it("survives 2,000 connections reset mid-read and keeps serving; fds return to baseline", async () => {
    const server = await startCli(["--max-workers", "0", "--clients-deadline", "5s"])
    const baseline = await settledFds(server)
    const next = random(42)
    const fds = sampler(() => server.fds(), 50)
    // A polite client keeps asking while the resets happen.
    let served = 0
    let failed = 0
    let running = true
    const polite = (async () => {
      while (running) {
        const result = await exchange(server.port, { message: "HI!", end: true, timeout: 10_000 })
        if (result.reply === "OK") served++
        else failed++
        await sleep(20)
      }
    })()
    const started = Date.now()
    // In waves of 250, each connection writing 1 byte to 20 kB and resetting
    // after 0-20 ms: some before the server read anything, some in the middle
    // of a message longer than bufferSize, some while the OK is on its way.
    for (let wave = 0; wave < 8; wave++) {
      await Promise.all(
        Array.from({ length: 250 }, () => {
          const size = 1 + Math.floor(next() * 20_000)
          return resetMidRead(server.port, Buffer.alloc(size, 0x41 + wave), Math.floor(next() * 20))
        })
      )
    }
    const elapsed = Date.now() - started
    running = false
    await polite
    const back = await fdsBackTo(server, baseline, 20_000)
    fds.stop()
    const after = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })
    report("2000 resets mid-read", {
      resetsDoneInMs: elapsed,
      politeServedDuring: served,
      politeFailedDuring: failed,
      fdsBefore: baseline,
      fdsPeak: fds.max(),
      fdsAfter: server.fds(),
      fdsBackAfterMs: back,
      servedAfterwards: after.reply,
      serverRunning: server.isRunning()
    })
    expect(server.isRunning()).toBe(true)
    expect(failed).toBe(0)
    expect(served).toBeGreaterThan(0)
    expect(after.reply).toBe("OK")
  })

  it("answers 200 half-closed clients that keep reading, then closes them", async () => {
    const server = await startCli(["--max-workers", "0", "--clients-deadline", "5s"])
    const baseline = await settledFds(server)
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect(server.port)))
    const started = Date.now()
    // The last message comes with the FIN: the reply must still arrive.
    for (const client of clients) client.socket.end("HI!")
    await Promise.all(clients.map((client) => client.closed(10_000)))
    const elapsed = Date.now() - started
    const answered = clients.filter((client) => client.text() === "OK" && client.error() === undefined)
    const back = await fdsBackTo(server, baseline, 10_000)
    report("200 half-open clients", {
      answeredOkThenClosed: answered.length,
      allClosedInMs: elapsed,
      fdsBefore: baseline,
      fdsAfter: server.fds(),
      fdsBackAfterMs: back
    })
    expect(answered.length).toBe(200)
  })

  it("closes 200 clients that vanish without a FIN at the deadline, and frees their fds", async () => {
    // A vanished peer never answers the server's FIN. Simulated by clients
    // that stop reading (so they never see the FIN) and keep their side open.
    const server = await startCli(["--max-workers", "0", "--clients-deadline", "1s"])
    const baseline = await settledFds(server)
    const ghosts: Array<Client> = []
    for (let i = 0; i < 200; i++) ghosts.push(await connect(server.port, { read: false, allowHalfOpen: true }))
    const started = Date.now()
    // Half of them sent one message first (its OK stays unread).
    for (const ghost of ghosts.slice(0, 100)) await ghost.send("HI!")
    const peak = await (async () => {
      await sleep(200)
      return server.fds()
    })()
    // The server closes them after the deadline and waits up to its linger
    // time (5 s in NodeConnection) for the peer's FIN before destroying them.
    const back = await fdsBackTo(server, baseline, 15_000)
    const probe = await exchange(server.port, { message: "HI!", end: true, timeout: 5000 })
    report("200 vanished clients", {
      fdsBefore: baseline,
      fdsWhileConnected: peak,
      fdsBackAfterMs: Date.now() - started,
      waitedMs: back,
      servedAfterwards: probe.reply
    })
    for (const ghost of ghosts) ghost.socket.destroy()
    expect(probe.reply).toBe("OK")
    expect(Date.now() - started).toBeLessThan(1000 + 5000 + 2000)
  })
})
