/**
 * `NodeProxyProtocol`: the wait for a connection's PROXY header (its timeout)
 * does not keep the process alive.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as ProxyGate from "../src/internal/proxyGate.ts"
import { referencedTimers } from "./utils/resources.ts"

describe("NodeProxyProtocol header wait", () => {
  it("waiting for a header does not keep the process alive", () => {
    const socket = new Net.Socket()
    const outcomes: Array<string> = []
    try {
      const before = referencedTimers()
      ProxyGate.readHeader(socket, 60_000, 4096, (outcome) => outcomes.push(outcome._tag))
      assert.strictEqual(referencedTimers(), before, "the header timeout is not a referenced timer")
    } finally {
      socket.destroy()
    }
  })
})
