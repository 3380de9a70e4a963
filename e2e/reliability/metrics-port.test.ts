/**
 * Row "slow clients on the metrics port": 100 clients trickle their request
 * headers a byte at a time while an operator's probe asks `/healthz`; it is
 * answered in milliseconds. A client that sends no headers is closed after
 * 10 seconds (Node's default would hold it far longer), and connections past
 * 256 are closed as they arrive.
 */
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { killAll, sleep } from "../harness/index.ts"
import { report, startCli } from "./harness.ts"

afterEach(killAll)

const open = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1", () => resolve(socket))
    socket.on("error", reject)
  })

const closedWithin = (socket: Net.Socket, millis: number) =>
  new Promise<boolean>((resolve) => {
    if (socket.destroyed) return resolve(true)
    const timer = setTimeout(() => resolve(false), millis)
    socket.once("close", () => {
      clearTimeout(timer)
      resolve(true)
    })
  })

describe("the metrics port under slow clients", () => {
  it("answers /healthz in milliseconds while 100 clients trickle headers, closes header-less clients after 10 s, caps connections at 256", async () => {
    const server = await startCli(["--metrics-port", "0"])
    const url = (await server.waitForOutput(/metrics at (http:\S+)\/metrics/))[1]!
    const port = Number(new URL(url).port)
    const silent = await open(port)
    silent.on("error", () => {})
    const openedAt = Date.now()
    const slow = await Promise.all(Array.from({ length: 100 }, () => open(port)))
    const request = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${"x".repeat(200)}\r\n\r\n`
    let sent = 0
    const trickle = setInterval(() => {
      if (sent >= request.length - 4) return
      for (const socket of slow) if (!socket.destroyed) socket.write(request[sent]!)
      sent++
    }, 50)
    for (const socket of slow) socket.on("error", () => {})
    const latencies: Array<number> = []
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })
      expect(response.status).toBe(200)
      await response.text()
      latencies.push(performance.now() - started)
      await sleep(100)
    }
    // 300 more connections: past 256 open, the rest are closed at once.
    const extra = await Promise.all(Array.from({ length: 300 }, () => open(port).catch(() => undefined)))
    const refused = (
      await Promise.all(extra.map((socket) => (socket === undefined ? true : closedWithin(socket, 1000))))
    ).filter(Boolean).length
    for (const socket of extra) socket?.destroy()
    const silentClosed = await closedWithin(silent, 15_000)
    const silentMillis = Date.now() - openedAt
    clearInterval(trickle)
    for (const socket of slow) socket.destroy()
    latencies.sort((a, b) => a - b)
    report("metrics port: 100 slow clients, 1 silent, 300 more", {
      "healthz median (ms)": Number(latencies[10]!.toFixed(1)),
      "healthz max (ms)": Number(latencies.at(-1)!.toFixed(1)),
      "silent client closed after (ms)": silentMillis,
      "of 300 more connections, closed at once": refused
    })
    expect(latencies[10]!).toBeLessThan(100)
    expect(latencies.at(-1)!).toBeLessThan(1000)
    expect(silentClosed).toBe(true)
    expect(silentMillis).toBeGreaterThanOrEqual(9_000)
    expect(silentMillis).toBeLessThan(14_000)
    expect(refused).toBeGreaterThanOrEqual(300 - (256 - 102))
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
  })
})
