/**
 * Rows "a process of --processes 2 dies": the primary replaces it with
 * backoff while the other process serves, however often the replacement dies
 * (here: killed before it could listen, five times in a row); a config file
 * broken on disk cannot stop a respawn (the replacement starts with the last
 * text that loaded); `/healthz` stays 200 while one process serves and says
 * how many do; `pool_process_restarts_total` counts the replacements; a
 * primary killed with SIGKILL leaves no process behind; and only a cluster in
 * which no process ever listened gives up (exit 1).
 *
 * Each test reports what it measured: restarts, time to recover, and the
 * requests lost by a client running throughout.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { cliBin, get, killAll, sleep, spawnNode, tempDir, waitUntil } from "../harness/index.ts"
import { connect, report, startCli } from "./harness.ts"

afterEach(killAll)

/** The processes `pid` started (Linux). */
const children = (pid: number): Array<number> => {
  try {
    return Fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter((word) => word !== "")
      .map(Number)
  } catch {
    return []
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One request per connection, in a loop, until stopped: how many were answered and lost. */
const steadyClient = (port: number) => {
  let running = true
  const counts = { ok: 0, lost: 0 }
  const done = (async () => {
    while (running) {
      try {
        const client = await connect(port)
        await client.send("HI!")
        const reply = await client.receive(2, 5000).finally(() => client.socket.destroy())
        if (reply === "OK") counts.ok++
        else counts.lost++
      } catch {
        counts.lost++
      }
      await sleep(5)
    }
  })()
  return {
    counts,
    stop: async () => {
      running = false
      await done
      return counts
    }
  }
}

const startCluster = async (flags: ReadonlyArray<string> = []) => {
  const server = await startCli(["--processes", "2", "--metrics-port", "0", ...flags])
  await server.waitForOutput(/primary: 2 processes listening/)
  const metrics = (await server.waitForOutput(/metrics at (http:\S+)\/metrics/))[1]!
  await waitUntil(() => children(server.pid).length === 2, "two processes")
  return { server, metrics }
}

const restarts = async (metrics: string) => {
  const text = (await get(`${metrics}/metrics`)).body
  return Array.from(text.matchAll(/^pool_process_restarts_total\{process="\d+"\} (\d+)$/gm)).reduce(
    (sum, match) => sum + Number(match[1]),
    0
  )
}

describe("supervision under --processes 2", () => {
  it("replaces a killed process, and a replacement killed before it listens again and again, with growing backoff while the other serves", async () => {
    const { server, metrics } = await startCluster()
    const client = steadyClient(server.port)
    await sleep(300)
    const [victim, survivor] = children(server.pid) as [number, number]
    const known = new Set([victim, survivor])
    const killedAt: Array<number> = []
    process.kill(victim, "SIGKILL")
    killedAt.push(Date.now())
    // Each replacement is killed as soon as it exists: long before Node could load and listen.
    const forkGaps: Array<number> = []
    for (let round = 0; round < 5; round++) {
      const fresh = await new Promise<number>((resolve, reject) => {
        const started = Date.now()
        const poll = setInterval(() => {
          const found = children(server.pid).find((pid) => !known.has(pid))
          if (found !== undefined) {
            clearInterval(poll)
            resolve(found)
          } else if (Date.now() - started > 20_000) {
            clearInterval(poll)
            reject(new Error(`no replacement after ${Date.now() - started} ms\n${server.output()}`))
          }
        }, 2)
      })
      forkGaps.push(Date.now() - killedAt.at(-1)!)
      known.add(fresh)
      process.kill(fresh, "SIGKILL")
      killedAt.push(Date.now())
      const health = await get(`${metrics}/healthz`)
      expect(health).toEqual({ status: 200, body: "1 of 2 processes serving\n" })
    }
    expect(isAlive(survivor)).toBe(true)
    // The next replacement is left alone: the cluster is whole again.
    await server.waitForOutput(/before listening; starting a new one in 3\.2s \(restart 6, 6 in a row/, 10_000)
    let healthy = await get(`${metrics}/healthz`)
    while (healthy.body !== "ok: 2 of 2 processes serving\n" && Date.now() - killedAt.at(-1)! < 30_000) {
      await sleep(50)
      healthy = await get(`${metrics}/healthz`)
    }
    expect(healthy).toEqual({ status: 200, body: "ok: 2 of 2 processes serving\n" })
    const wholeAfter = Date.now() - killedAt.at(-1)!
    const counts = await client.stop()
    expect(await restarts(metrics)).toBe(6)
    // Backoff: 100 ms, 200, 400, 800, 1.6 s between a failure and the next fork (plus the fork's own time).
    for (const [i, gap] of forkGaps.entries()) expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i - 20)
    expect(counts.ok).toBeGreaterThan(0)
    report("supervision: kill a process, then kill 5 replacements before they listen", {
      restarts: await restarts(metrics),
      "fork gaps after each kill (ms)": forkGaps.join(", "),
      "from the last kill to 2 of 2 serving (ms)": wholeAfter,
      "requests answered": counts.ok,
      "requests lost": counts.lost,
      "survivor pid alive": isAlive(survivor)
    })
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
  })

  it("starts a replacement with the last config that loaded when the file on disk is broken", async () => {
    const dir = tempDir("pool-manager-supervision-")
    const file = Path.join(dir, "pool.json")
    Fs.writeFileSync(file, JSON.stringify({ maxWorkersCount: 7 }))
    const { server, metrics } = await startCluster(["--config", file])
    Fs.writeFileSync(file, "{ this is not json")
    // The primary reads it on SIGHUP: it says so and keeps the last text; the processes keep their configuration.
    server.child.kill("SIGHUP")
    await server.waitForOutput(
      /primary, on SIGHUP: config file .*: not valid JSON.*new processes start with the last one that loaded/
    )
    const client = steadyClient(server.port)
    const [victim] = children(server.pid) as [number]
    const from = server.output().length
    const killed = Date.now()
    process.kill(victim, "SIGKILL")
    await server.waitForOutput(/listening on 127\.0\.0\.1:\d+ .*max-workers=7 /, 20_000, from)
    let health = await get(`${metrics}/healthz`)
    while (health.body !== "ok: 2 of 2 processes serving\n" && Date.now() - killed < 20_000) {
      await sleep(50)
      health = await get(`${metrics}/healthz`)
    }
    const recoverMillis = Date.now() - killed
    expect(health).toEqual({ status: 200, body: "ok: 2 of 2 processes serving\n" })
    const counts = await client.stop()
    expect(await restarts(metrics)).toBe(1)
    report("supervision: a process dies while the config file on disk is broken", {
      restarts: 1,
      "time to 2 of 2 serving (ms)": recoverMillis,
      "requests answered": counts.ok,
      "requests lost": counts.lost
    })
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
  })

  it("retries a replacement that cannot start while its TLS files are missing, and recovers once they are back", async () => {
    const dir = tempDir("pool-manager-supervision-")
    const key = Path.join(dir, "key.pem")
    const cert = Path.join(dir, "cert.pem")
    ChildProcess.execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
        ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]
      ],
      { stdio: "ignore" }
    )
    const { server, metrics } = await startCluster(["--tls-key", key, "--tls-cert", cert])
    Fs.renameSync(cert, `${cert}.away`)
    const [victim] = children(server.pid) as [number]
    const from = server.output().length
    process.kill(victim, "SIGKILL")
    // The replacements fail before listening (the file is gone), again and again, with growing delays.
    await server.waitForOutput(/before listening; starting a new one in 800ms \(restart 4, 4 in a row/, 20_000, from)
    expect(await get(`${metrics}/healthz`)).toEqual({ status: 200, body: "1 of 2 processes serving\n" })
    expect(server.output().slice(from)).toMatch(/Path does not exist: .*cert\.pem|cannot use --tls-key/)
    Fs.renameSync(`${cert}.away`, cert)
    const restored = Date.now()
    let health = await get(`${metrics}/healthz`)
    while (health.body !== "ok: 2 of 2 processes serving\n" && Date.now() - restored < 30_000) {
      await sleep(50)
      health = await get(`${metrics}/healthz`)
    }
    expect(health).toEqual({ status: 200, body: "ok: 2 of 2 processes serving\n" })
    const total = await restarts(metrics)
    report("supervision: a process dies while its TLS certificate file is missing", {
      restarts: total,
      "from the file's return to 2 of 2 serving (ms)": Date.now() - restored
    })
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
  })

  it("leaves no process behind when the primary is killed with SIGKILL", async () => {
    const { server } = await startCluster()
    const workers = children(server.pid)
    expect(workers.length).toBe(2)
    server.child.kill("SIGKILL")
    const millis = await waitUntil(() => workers.every((pid) => !isAlive(pid)), "the processes to exit", 10_000)
    report("supervision: SIGKILL to the primary", { "processes left": 0, "time until they exited (ms)": millis })
  })

  it("gives up, exit 1, only when no process ever listened", async () => {
    const blocker = Net.createServer()
    await new Promise<void>((resolve) => blocker.listen({ host: "127.0.0.1", port: 0 }, resolve))
    const port = (blocker.address() as Net.AddressInfo).port
    try {
      const server = await spawnNode([cliBin, "--port", String(port), "--processes", "2"], { waitForListening: false })
      expect(await server.exited).toBe(1)
      expect(server.output()).toMatch(/exited with code 1 before listening/)
    } finally {
      blocker.close()
    }
  })
})
