/**
 * The socket side of the PROXY protocol gate (internal/proxyGate.ts) over
 * real loopback sockets in the test process: which trusted-proxy entries are
 * addresses or CIDRs, and reading a header under a timeout — the header
 * whole or in pieces, the bytes after it handed back in order, and each way
 * it can fail (invalid, peer gone or reset, too slow), each ending once and
 * leaving no listener behind; and `makeGate` closing an untrusted peer,
 * counted in its metric and logged naming the peer (`unknown` over a unix
 * socket).
 * NodeTcpServer.proxy.test.ts runs the gate in a server.
 */
import type * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { NodeProxyProtocol } from "../src/index.ts"
import * as ProxyGate from "../src/internal/proxyGate.ts"
import { tempDir } from "./utils/certificate.ts"
import { capturingLogs, type LogLine } from "./utils/logs.ts"
import { v1 } from "./utils/proxyHeaders.ts"
import { socketPair, until } from "./utils/socketPair.ts"

/** Reads a header from `socket`, recording every outcome (there must be one). */
const reading = (socket: Net.Socket, timeoutMillis = 2000) => {
  const outcomes: Array<ProxyGate.Outcome> = []
  const listeners = {
    data: socket.listenerCount("data"),
    end: socket.listenerCount("end"),
    error: socket.listenerCount("error"),
    close: socket.listenerCount("close")
  }
  ProxyGate.readHeader(socket, timeoutMillis, 107, (outcome) => outcomes.push(outcome))
  const left = () => ({
    data: socket.listenerCount("data"),
    end: socket.listenerCount("end"),
    error: socket.listenerCount("error"),
    close: socket.listenerCount("close")
  })
  return { outcomes, listeners, left }
}

/** What `socket` receives from now on. */
const rest = (socket: Net.Socket) => {
  let got = ""
  socket.on("data", (chunk: Buffer) => {
    got += chunk.toString("latin1")
  })
  socket.resume()
  return () => got
}

const header = v1("TCP4", ["192.0.2.1", "198.51.100.1", 5000, 80])

describe("NodeProxyProtocol gate", () => {
  it("trusts addresses and CIDRs of either family, and names the first entry that is neither", () => {
    const list = ProxyGate.blockList([" 10.0.0.0/8 ", "192.0.2.7", "::1/128", "fd00::/8", "0.0.0.0/0"])
    assert.notStrictEqual(typeof list, "string")
    if (typeof list !== "string") {
      assert.isTrue(list.check("10.200.3.4", "ipv4"))
      assert.isTrue(list.check("192.0.2.7", "ipv4"))
      assert.isTrue(list.check("::1", "ipv6"))
      assert.isTrue(list.check("fd12::1", "ipv6"))
    }
    const one = ProxyGate.blockList(["192.0.2.7"])
    if (typeof one !== "string") assert.isFalse(one.check("192.0.2.8", "ipv4"), "an address alone is a /32")
    for (const bad of [
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/-1",
      "10.0.0.0/x8",
      "10.0.0.0/8x",
      "10.0.0.0/0008",
      "10.0.0.0/8/1",
      "10.0.0.0/",
      "proxy.local",
      ""
    ]) {
      assert.strictEqual(ProxyGate.blockList(["127.0.0.1", bad]), bad, JSON.stringify(bad))
    }
    assert.notStrictEqual(typeof ProxyGate.blockList(["10.0.0.0/0", "::/0"]), "string")
  })

  it.live("a header and what follows in one write: the header, then the rest in order", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const read = reading(server)
      client.write(Buffer.concat([header, Buffer.from("PING\r\n")]))
      yield* until(() => read.outcomes.length > 0, "the header")
      const [outcome] = read.outcomes
      assert.strictEqual(outcome?._tag, "Header")
      if (outcome?._tag === "Header") assert.strictEqual(outcome.header.length, header.length)
      assert.isTrue(server.isPaused(), "paused until the caller is ready")
      assert.deepStrictEqual(read.left(), read.listeners)
      const got = rest(server)
      client.write("MORE\r\n")
      yield* until(() => got() === "PING\r\nMORE\r\n", "the bytes after the header, then the next ones")
      assert.strictEqual(read.outcomes.length, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a header in pieces, with nothing after it; the timeout no longer runs once it came", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      const read = reading(server, 150)
      client.write(header.subarray(0, 10))
      yield* Effect.sleep("50 millis")
      assert.strictEqual(read.outcomes.length, 0, "incomplete: still waiting")
      client.write(header.subarray(10))
      yield* until(() => read.outcomes.length > 0, "the header")
      assert.strictEqual(read.outcomes[0]?._tag, "Header")
      const got = rest(server)
      client.write("NEXT")
      yield* until(() => got() === "NEXT", "only what came after")
      yield* Effect.sleep("200 millis")
      assert.deepStrictEqual(
        read.outcomes.map((outcome) => outcome._tag),
        ["Header"],
        "past the timeout: still the header alone"
      )
    }).pipe(Effect.scoped)
  )

  it.live("a peer that resets before a complete header: closed at once, its error taken by the reader", () =>
    Effect.gen(function* () {
      const { server, client } = yield* socketPair()
      // No listener of the caller's own: the reader's must take the error a reset raises.
      server.removeAllListeners("error")
      const read = reading(server)
      client.write(header.subarray(0, 8))
      yield* Effect.sleep("30 millis")
      assert.doesNotThrow(() =>
        server.emit("error", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))
      )
      // A reset ends no stream ("end"), it only closes the socket: rejected then, not at the timeout.
      client.resetAndDestroy()
      yield* until(() => read.outcomes.length > 0, "the reset peer's rejection", "1 second")
      assert.deepStrictEqual(read.outcomes, [
        { _tag: "Rejected", reason: "closed", detail: "the peer closed before a complete header" }
      ])
      assert.deepStrictEqual(read.left(), read.listeners)
    }).pipe(Effect.scoped)
  )

  it.live("an invalid header, a peer that leaves, and one too slow are rejected once, saying why", () =>
    Effect.gen(function* () {
      const invalid = yield* socketPair()
      const bad = reading(invalid.server)
      invalid.client.write("GET / HTTP/1.1\r\n\r\n")
      yield* until(() => bad.outcomes.length > 0, "the invalid header's rejection")
      assert.strictEqual(bad.outcomes[0]?._tag, "Rejected")
      assert.deepStrictEqual(bad.left(), bad.listeners)

      const leaving = yield* socketPair()
      const gone = reading(leaving.server)
      leaving.client.end(header.subarray(0, 8))
      yield* until(() => gone.outcomes.length > 0, "the closed peer's rejection")
      assert.deepStrictEqual(gone.outcomes[0], {
        _tag: "Rejected",
        reason: "closed",
        detail: "the peer closed before a complete header"
      })
      leaving.server.destroy()
      yield* Effect.sleep("20 millis")
      assert.strictEqual(gone.outcomes.length, 1, "the close after the end does not end it again")
      assert.deepStrictEqual(gone.left(), gone.listeners)

      const slow = yield* socketPair()
      const late = reading(slow.server, 100)
      slow.client.write(header.subarray(0, 8))
      yield* until(() => late.outcomes.length > 0, "the timeout")
      assert.deepStrictEqual(late.outcomes[0], {
        _tag: "Rejected",
        reason: "timeout",
        detail: "no complete header within 100 ms"
      })
      // The header completing after the timeout changes nothing.
      slow.client.write(header.subarray(8))
      yield* Effect.sleep("30 millis")
      assert.strictEqual(late.outcomes.length, 1)
      assert.deepStrictEqual(late.left(), late.listeners)
    }).pipe(Effect.scoped)
  )

  it.live("makeGate closes an untrusted peer, counts it, and logs naming the peer (unknown over a unix socket)", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const gate = yield* NodeProxyProtocol.makeGate({ trustedProxies: ["10.0.0.0/8"] })
      const tcp = yield* socketPair()
      const unix = yield* socketPair({ path: Path.join(yield* tempDir, "gate.sock") })
      for (const { server } of [tcp, unix]) {
        gate.admit(server, () => assert.fail("an untrusted peer reached the pool"))
        assert.isTrue(server.destroyed)
      }
      yield* until(() => lines.length === 2, "two warnings")
      assert.deepStrictEqual(
        lines.map(({ message, annotations }) => [message, annotations]),
        [
          [
            "PROXY protocol: closed a connection from 127.0.0.1: the peer is not in the trusted proxies",
            { proxyPeer: "127.0.0.1", reason: "untrusted" }
          ],
          [
            "PROXY protocol: closed a connection from unknown: the peer is not in the trusted proxies",
            { proxyPeer: "unknown", reason: "untrusted" }
          ]
        ]
      )
      assert.strictEqual((yield* gate.rejected).untrusted, 2)
      const metric = (yield* Metric.snapshot).find(
        (snapshot) =>
          snapshot.id === "pool_proxy_connections_rejected_total" && snapshot.attributes?.reason === "untrusted"
      )
      assert.strictEqual(
        metric?.description,
        "Connections closed before the pool for their PROXY protocol header, by reason"
      )
      assert.deepInclude(metric?.state, { count: 2 })
    }).pipe(
      Effect.scoped,
      Effect.provide(capturingLogs(lines)),
      Effect.provideService(Metric.MetricRegistry, new Map())
    )
  })
})
