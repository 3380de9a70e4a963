/**
 * `deploy/haproxy.cfg` with the real HAProxy in front of two real
 * `pool-manager` backends, all on loopback: balancing, the client's address
 * through PROXY v2, a rolling restart under load, and agent-check steering.
 */
import type * as Net from "node:net"
import { afterEach, assert, describe, it } from "vitest"
import { killAll, type Outcome, request, type ServerProcess, sleep, tally } from "../harness/index.ts"
import {
  allocate,
  type Backend,
  checkBalancing,
  checkClientAddresses,
  countingServer,
  deployFile,
  type Ports,
  render,
  report,
  startBackend,
  startHaproxy
} from "./harness.ts"

// Long enough for HAProxy's checks (every 300 ms, rise 2, fall 1) to settle.
const settle = () => sleep(1200)

const haproxy = async (ports: Ports, edit: (config: string) => string = (config) => config) => {
  return startHaproxy(edit(render(deployFile("haproxy.cfg"), ports)), ports.frontend)
}

const close = (sockets: ReadonlyArray<Net.Socket>) => {
  for (const socket of sockets) socket.destroy()
}

/** Stops a backend the way systemd does (SIGTERM) and starts it again on the same ports. */
const restart = async (server: ServerProcess, backend: Backend, options: Parameters<typeof startBackend>[2]) => {
  server.child.kill("SIGTERM")
  assert.strictEqual(await server.exited, 0, server.output())
  return startBackend(backend, [], options)
}

/**
 * Restarts each backend in turn (waiting for HAProxy's checks in between)
 * while 6 clients each connect for every request (at most 6 connections at a
 * time); the outcomes of their requests.
 */
const rollingRestart = async (shutdownDelay: string) => {
  const ports = await allocate()
  const servers = await Promise.all(ports.backends.map((backend) => startBackend(backend, [], { shutdownDelay })))
  await haproxy(ports)
  await settle()
  const outcomes: Array<Outcome> = []
  let running = true
  const loops = Array.from({ length: 6 }, async () => {
    while (running) outcomes.push((await request(ports.frontend)).outcome)
  })
  await sleep(500)
  for (const i of [0, 1]) {
    servers[i] = await restart(servers[i]!, ports.backends[i]!, { shutdownDelay })
    await settle()
  }
  running = false
  await Promise.all(loops)
  await killAll()
  return outcomes
}

describe("HAProxy (deploy/haproxy.cfg)", () => {
  afterEach(killAll)

  it("balances connections across both backends", async () => {
    const ports = await allocate()
    await Promise.all(ports.backends.map((backend) => startBackend(backend)))
    await haproxy(ports)
    await settle()
    await checkBalancing(ports, "haproxy balancing")
  })

  it("PROXY v2: the backend limits and logs each real client, not HAProxy", async () => {
    const ports = await allocate()
    // One backend only (the other is down), so both clients meet the same per-address limit.
    const backend = await startBackend(ports.backends[0], ["--max-connections-per-address", "1", "--debug"])
    await haproxy(ports)
    await settle()
    assert.deepStrictEqual(await checkClientAddresses(ports, backend), ["OK", "OK", "BUSY"])
  })

  it("a rolling restart under connect-per-request load: no client sees an error with --shutdown-delay", async () => {
    // For comparison: without the lame-duck period, a backend closes its listener
    // before HAProxy's next check notices, and the odd request fails.
    const baseline = await rollingRestart("0")
    const outcomes = await rollingRestart("1s")
    const counts = tally(outcomes)
    report("haproxy rolling restart, connect per request", {
      withoutDelay: { requests: baseline.length, ...tally(baseline) },
      withDelay1s: { requests: outcomes.length, ...counts }
    })
    assert.deepStrictEqual(counts, { OK: outcomes.length })
    assert.isAtLeast(outcomes.length, 100)
  })

  it("a rolling restart under persistent connections: every request a backend handled is answered", async () => {
    const ports = await allocate()
    const servers = await Promise.all(
      ports.backends.map((backend) => startBackend(backend, [], { script: countingServer }))
    )
    const exited: Array<ServerProcess> = []
    await haproxy(ports)
    await settle()
    let running = true
    let answered = 0
    let unanswered = 0
    let connections = 0
    // 6 clients, each on one connection until the server closes it, then on a new one.
    const loops = Array.from({ length: 6 }, async () => {
      while (running) {
        const { first, send, replies, closed } = await persistent(ports.frontend)
        connections++
        if (first === "OK") answered++
        else unanswered++
        while (running && !closed()) {
          send()
          const reply = await replies()
          if (reply === "OK") answered++
          else unanswered++
        }
      }
    })
    await sleep(500)
    for (const i of [0, 1]) {
      exited.push(servers[i]!)
      servers[i] = await restart(servers[i]!, ports.backends[i]!, { script: countingServer })
      await settle()
    }
    running = false
    await Promise.all(loops)
    for (const server of servers) server!.child.kill("SIGTERM")
    const handled = await Promise.all(
      [...exited, ...servers].map(async (server) => {
        await server!.exited
        return Number((await server!.waitForOutput(/handled (\d+)/))[1])
      })
    )
    const total = handled.reduce((sum, n) => sum + n, 0)
    report("haproxy rolling restart, persistent connections", { answered, unanswered, connections, handled })
    // Requests left unanswered met a connection the draining backend closed before reading them.
    assert.strictEqual(total, answered)
    assert.isAtLeast(answered, 100)
  })

  it("agent-check steers new clients away from a full backend", async () => {
    const steer = async (agent: boolean) => {
      const ports = await allocate()
      const flags = ["--max-workers", "10"]
      const [first] = await Promise.all(ports.backends.map((backend) => startBackend(backend, flags)))
      const edit = (config: string) => {
        if (agent) return config
        const without = config.replace(" agent-check agent-inter 300ms", "")
        assert.notStrictEqual(without, config)
        return without
      }
      await haproxy(ports, edit)
      await settle()
      // Fifteen long-lived clients on the first backend, reaching it some other
      // way (another balancer): it fills (10) and refuses 5; HAProxy sees none of it.
      const early: Array<{ outcome: Outcome; socket: Net.Socket }> = []
      for (let i = 0; i < 15; i++) {
        early.push(await request(ports.backends[0].port, { hold: true, proxyHeader: true }))
      }
      await settle()
      // Ten new long-lived clients through HAProxy: the second backend has room for all of them.
      const late: Array<{ outcome: Outcome; socket: Net.Socket }> = []
      for (let i = 0; i < 10; i++) late.push(await request(ports.frontend, { hold: true }))
      close([...early, ...late].map(({ socket }) => socket))
      assert.isTrue(first!.isRunning())
      await killAll()
      return {
        early: tally(early.map(({ outcome }) => outcome)),
        late: tally(late.map(({ outcome }) => outcome))
      }
    }
    const without = await steer(false)
    const withAgent = await steer(true)
    report("agent-check steering: 15 clients on backend 1, then 10 new ones through HAProxy", {
      withoutAgent: without,
      withAgent
    })
    for (const run of [without, withAgent]) assert.deepStrictEqual(run.early, { OK: 10, BUSY: 5 })
    const busy = (counts: Record<string, number>) => counts.BUSY ?? 0
    assert.isAtLeast(busy(without.late), 3)
    assert.isAtMost(busy(withAgent.late), 1)
  })
})

/** A persistent client: send `HI`, wait for its reply (`OK`, or `closed` when the connection ends first). */
const persistent = async (port: number) => {
  const { outcome, socket } = await request(port, { hold: true })
  let closed = false
  let text = ""
  let waiter: ((reply: string) => void) | undefined
  socket.on("close", () => {
    closed = true
    waiter?.("closed")
  })
  socket.on("data", (chunk) => {
    text += chunk
    if (text.length >= 2 && waiter !== undefined) {
      const reply = text.slice(0, 2)
      text = text.slice(2)
      waiter(reply)
    }
  })
  if (outcome !== "OK") closed = true
  return {
    first: outcome,
    send: () => void socket.write("HI"),
    replies: () =>
      new Promise<string>((resolve) => {
        if (closed) return resolve("closed")
        const timer = setTimeout(() => resolve("timeout"), 5000)
        waiter = (reply) => {
          clearTimeout(timer)
          waiter = undefined
          resolve(reply)
        }
      }),
    closed: () => closed
  }
}
