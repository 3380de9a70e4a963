/**
 * Row "SIGTERM / SIGINT during steady load": no new connection is admitted
 * after the signal, every request already received is answered (and the
 * answer flushed), and the process exits 0 within drainTimeout.
 *
 * Runs the reliability server (the OK server built from the layers, run by
 * `NodeCli.runMain` like the CLI), because its `final-stats` line — printed
 * after the listener closed and the pool drained — says how many messages
 * reached the callback: every one of them must have been answered.
 */
import { afterEach, describe, expect, it } from "vitest"
import { killAll, sleep } from "../harness/index.ts"
import { type Client, connect, exchange, report, startScript } from "./harness.ts"

afterEach(killAll)

interface LoadClient {
  readonly client: Client
  sent: number
  answered: number
  /** A request was sent and its OK had not arrived when the connection closed. */
  unanswered: boolean
  lastSentAt: number
  done: Promise<void>
}

/** Sends a request, waits for its OK, and again, until the server closes the connection. */
const runClient = (client: Client, index: number): LoadClient => {
  const state: LoadClient = {
    client,
    sent: 0,
    answered: 0,
    unanswered: false,
    lastSentAt: 0,
    done: Promise.resolve()
  }
  state.done = (async () => {
    while (!client.isClosed()) {
      // Every 4th request takes 300 ms in the callback: some are mid-callback at the signal.
      const message = (state.sent + index) % 4 === 0 ? "slow:300" : `request ${state.sent}`
      state.sent++
      state.lastSentAt = Date.now()
      await client.send(message)
      try {
        await client.receive(2 * state.sent, 10_000)
        state.answered++
      } catch {
        state.unanswered = true
        return
      }
    }
  })()
  return state
}

describe.each(["SIGTERM", "SIGINT"] as const)("%s during steady load", (signal) => {
  it("admits nothing new, answers every request received, flushes, and exits 0 within drainTimeout", async () => {
    const drainMillis = 5000
    const server = await startScript({
      config: { maxWorkersCount: 64, clientsDeadline: "10 seconds", drainTimeout: `${drainMillis} millis` }
    })
    const clients = await Promise.all(Array.from({ length: 40 }, () => connect(server.port)))
    const load = clients.map(runClient)
    await sleep(1000)

    const signalled = Date.now()
    server.child.kill(signal)
    // Newcomers after the signal: refused by the closed listener, or told the pool is not running.
    await sleep(50)
    const late = await Promise.all(
      Array.from({ length: 20 }, () => exchange(server.port, { message: "HI!", end: true, timeout: 5000 }))
    )
    const code = await server.exited
    const exitMillis = Date.now() - signalled
    await Promise.all(load.map((l) => l.done))
    const final = server.statsLines("final-stats").at(-1)!

    const answered = load.reduce((sum, l) => sum + l.answered, 0)
    const sent = load.reduce((sum, l) => sum + l.sent, 0)
    const lateOutcomes = new Map<string, number>()
    for (const o of late) {
      const key = o.error ?? JSON.stringify(o.reply)
      lateOutcomes.set(key, (lateOutcomes.get(key) ?? 0) + 1)
    }
    report(`${signal} under load`, {
      clients: load.length,
      requestsSent: sent,
      answeredOk: answered,
      messagesThatReachedTheCallback: final.messages,
      bytesWritten: final.bytesWritten,
      unansweredAtClose: load.filter((l) => l.unanswered).length,
      // Negative: sent after the signal, to a server already stopping.
      unansweredSentMsBeforeSignal: load.filter((l) => l.unanswered).map((l) => signalled - l.lastSentAt),
      lateConnectionOutcomes: Object.fromEntries(lateOutcomes),
      acceptedTotal: final.accepted,
      closedByStop: final.closedByStop,
      interruptedByDrain: final.interruptedByDrain,
      exitCode: code,
      exitMs: exitMillis
    })
    expect(code).toBe(0)
    expect(exitMillis).toBeLessThan(drainMillis)
    // Nothing new admitted: the late ones were refused, and only the 40 load clients were ever accepted.
    expect(late.filter((o) => o.reply.includes("OK"))).toEqual([])
    expect(final.accepted).toBe(40)
    // Every message that reached the callback was answered and its answer reached the client.
    expect(answered).toBe(final.messages)
    expect(final.bytesWritten).toBe(2 * final.messages)
    expect(final.interruptedByDrain).toBe(0)
    expect(final.callbackFailures).toBe(0)
    // A request left unanswered was sent after the signal (a few ms of slack for the signal's delivery).
    expect(load.filter((l) => l.unanswered && l.lastSentAt < signalled - 20)).toEqual([])
    expect(answered).toBeGreaterThan(100)
  })
})
