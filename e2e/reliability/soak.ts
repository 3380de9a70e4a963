#!/usr/bin/env node
/**
 * The soak: 1,000,000 requests (by default) against the reliability server,
 * over connections that each carry `--per-connection` requests and then
 * reconnect. Not part of CI: `npm run soak` (or `node e2e/reliability/soak.ts
 * --requests 200000`).
 *
 * The server runs with --expose-gc and prints its stats (PoolStats, heap
 * after a full GC, RSS, open fds) every second. The heap and fds are compared
 * at two idle points — after the warm-up, and after the last request, each
 * once every client has closed — and must stay within 10% and equal.
 * Prints a JSON summary; exits 1 if a check fails.
 */
import * as Net from "node:net"
import { parseArgs } from "node:util"
import { killAll, sleep, waitUntil } from "../harness/index.ts"
import { mb, type ScriptProcess, type ServerStats, startScript } from "./harness.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "1000000" },
    warmup: { type: "string", default: "100000" },
    connections: { type: "string", default: "50" },
    "per-connection": { type: "string", default: "1000" },
    "max-heap-growth": { type: "string", default: "0.10" }
  }
})
const total = Number(values.requests)
const warmup = Math.min(Number(values.warmup), Math.floor(total / 2))
const connections = Number(values.connections)
const perConnection = Number(values["per-connection"])
const maxHeapGrowth = Number(values["max-heap-growth"])

let done = 0
let errors = 0

/** One connection: `count` request/reply round trips of "HI!" → "OK", then a clean close. */
const session = (port: number, count: number) =>
  new Promise<number>((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    let answered = 0
    let pending = 0
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.length
      while (pending >= 2) {
        pending -= 2
        answered++
        done++
        if (answered < count) socket.write("HI!")
        else socket.end()
      }
    })
    socket.on("error", () => {
      errors++
    })
    socket.on("close", () => resolve(answered))
    socket.on("connect", () => socket.write("HI!"))
  })

/** Runs `connections` clients in parallel until `target` requests in total were answered. */
const load = async (port: number, target: number) => {
  let issued = done
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (issued < target) {
        const count = Math.min(perConnection, target - issued)
        issued += count
        const answered = await session(port, count)
        // A connection the server closed early: issue what it did not answer again.
        if (answered < count) issued -= count - answered
      }
    })
  )
}

/** The next stats line printed after now, once no connection is open (idle). */
const idleStats = async (server: ScriptProcess): Promise<ServerStats> => {
  await waitUntil(() => server.statsLines().at(-1)?.busy === 0, "the server to be idle", 30_000)
  const seen = server.statsLines().length
  await waitUntil(() => server.statsLines().length > seen + 1, "two more stats lines", 30_000)
  return server.statsLines().at(-1)!
}

const main = async () => {
  const server = await startScript({
    config: { maxWorkersCount: 0, minWorkersCount: 0, clientsDeadline: "10 seconds" },
    statsInterval: 1000,
    gc: true
  })
  const started = Date.now()
  const progress = setInterval(() => {
    const stats = server.statsLines().at(-1)
    const seconds = (Date.now() - started) / 1000
    console.log(
      `${done} requests in ${seconds.toFixed(0)} s (${Math.round(done / seconds)}/s)` +
        (stats === undefined
          ? ""
          : ` server: heap ${mb(stats.heapUsed)} rss ${mb(stats.rss)} fds ${stats.fds} workers ${stats.workers}`)
    )
  }, 5000)
  try {
    const before = await idleStats(server)
    await load(server.port, warmup)
    const warmed = await idleStats(server)
    const warmedAt = Date.now()
    await load(server.port, total)
    const loadSeconds = (Date.now() - warmedAt) / 1000
    const final = await idleStats(server)
    clearInterval(progress)
    server.child.kill("SIGTERM")
    const code = await server.exited

    const heapGrowth = (final.heapUsed - warmed.heapUsed) / warmed.heapUsed
    const checks = {
      everyRequestAnswered: done >= total && errors === 0,
      serverCountedThem: final.messages === done,
      heapGrowthBelowLimit: heapGrowth < maxHeapGrowth,
      noFdGrowth: final.fds <= warmed.fds,
      noWorkerLeak: final.busy === 0 && final.workers === final.spawned - final.retired,
      exitedZero: code === 0
    }
    const summary = {
      requests: done,
      clientErrors: errors,
      connections: final.accepted,
      seconds: Math.round((Date.now() - started) / 1000),
      requestsPerSecondAfterWarmup: Math.round((total - warmup) / loadSeconds),
      heap: { start: mb(before.heapUsed), afterWarmup: mb(warmed.heapUsed), end: mb(final.heapUsed) },
      heapGrowthAfterWarmup: `${(heapGrowth * 100).toFixed(2)}%`,
      rss: { start: mb(before.rss), afterWarmup: mb(warmed.rss), end: mb(final.rss) },
      fds: { start: before.fds, afterWarmup: warmed.fds, end: final.fds },
      server: { messages: final.messages, spawned: final.spawned, retired: final.retired, workers: final.workers },
      checks
    }
    console.log(JSON.stringify(summary, null, 2))
    return Object.values(checks).every(Boolean) ? 0 : 1
  } finally {
    clearInterval(progress)
    await killAll()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  async (error: unknown) => {
    console.error(error)
    await killAll()
    await sleep(10)
    process.exitCode = 1
  }
)
