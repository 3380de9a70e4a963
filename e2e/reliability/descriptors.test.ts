/**
 * Row "out of file descriptors": the server runs under `prlimit --nofile=64`
 * and 120 clients connect and stay. Past the limit, accepting fails with
 * EMFILE: the server logs a warning naming the limit (rate-limited, with a
 * summary of what it did not log), counts `pool_accept_errors_total{code}`,
 * does not spin (its CPU time while exhausted is measured), and serves again
 * once the clients leave.
 */
import * as Fs from "node:fs"
import { afterEach, describe, expect, it } from "vitest"
import { killAll, sleep, waitUntil } from "../harness/index.ts"
import { type Client, connect, exchange, report, startCli } from "./harness.ts"

afterEach(killAll)

// utime + stime of a process, in clock ticks (1/100 s on Linux).
const cpuTicks = (pid: number): number => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(fields[11]) + Number(fields[12])
}

const ask = async (port: number) => {
  const client = await connect(port)
  await client.send("HI!")
  try {
    return await client.receive(2, 5000)
  } finally {
    client.socket.destroy()
  }
}

describe("descriptor exhaustion", () => {
  it("logs and counts EMFILE, does not spin, and recovers when descriptors free up", async () => {
    const server = await startCli(["--metrics-port", "0", "--clients-deadline", "60s"], {
      wrapper: ["prlimit", "--nofile=64:64", "--"]
    })
    const metrics = (await server.waitForOutput(/metrics at (http:\S+)\/metrics/))[1]!
    const fdsAtStart = server.fds()
    const clients: Array<Client> = []
    for (let i = 0; i < 120; i++) {
      try {
        clients.push(await connect(server.port))
      } catch {
        // Refused outright: counted below as not held.
      }
    }
    await server.waitForOutput(
      /accepting on 127\.0\.0\.1:\d+: EMFILE.*\(this process is out of file descriptors\).*limit 64 \(ulimit -n/,
      10_000
    )
    await sleep(500)
    const lost = clients.filter((client) => client.isClosed()).length
    // Exhausted, with new clients still knocking: the CPU time must stay low.
    const ticks = cpuTicks(server.pid)
    const from = Date.now()
    const knocks = await Promise.all(
      Array.from({ length: 40 }, () => exchange(server.port, { message: "HI!", timeout: 3000 }))
    )
    await sleep(1000)
    const cpuPercent = ((cpuTicks(server.pid) - ticks) / 100 / ((Date.now() - from) / 1000)) * 100
    const knocksLost = knocks.filter((knock) => knock.reply !== "OK").length
    for (const client of clients) client.socket.destroy()
    const recoverMillis = await waitUntil(() => server.fds() <= fdsAtStart + 2, "descriptors to be freed", 10_000)
    expect(await ask(server.port)).toBe("OK")
    const text = await (await fetch(`${metrics}/metrics`)).text()
    const errors = Number(/^pool_accept_errors_total\{code="EMFILE"\} (\d+)$/m.exec(text)?.[1] ?? "0")
    expect(errors).toBeGreaterThan(0)
    const warnings = server.output().match(/accepting on .*EMFILE/g)?.length ?? 0
    // Rate-limited: a few lines, however many errors.
    expect(warnings).toBeLessThanOrEqual(5)
    expect(cpuPercent).toBeLessThan(50)
    expect(server.isRunning()).toBe(true)
    report("descriptor exhaustion (ulimit -n 64, 120 clients held, 40 more knocking)", {
      "descriptors at start": fdsAtStart,
      "held clients closed by the server": lost,
      "knocking clients not answered": knocksLost,
      "pool_accept_errors_total{code=EMFILE}": errors,
      "warning lines": warnings,
      "server CPU while exhausted (% of a core)": Number(cpuPercent.toFixed(1)),
      "time to free descriptors after clients left (ms)": recoverMillis
    })
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
  })
})
