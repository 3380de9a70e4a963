/**
 * `deploy/nginx.conf` with the real nginx (stream module) in front of two
 * real `pool-manager` backends, all on loopback: balancing, and the client's
 * address through PROXY v1.
 */
import { afterEach, assert, describe, it } from "vitest"
import { killAll } from "../harness/index.ts"
import {
  allocate,
  checkBalancing,
  checkClientAddresses,
  deployFile,
  type Ports,
  render,
  startBackend,
  startNginx
} from "./harness.ts"

const nginx = (ports: Ports) => startNginx(render(deployFile("nginx.conf"), ports), ports.frontend)

describe("nginx stream (deploy/nginx.conf)", () => {
  afterEach(killAll)

  it("balances connections across both backends", async () => {
    const ports = await allocate()
    await Promise.all(ports.backends.map((backend) => startBackend(backend)))
    await nginx(ports)
    await checkBalancing(ports, "nginx balancing")
  })

  it("PROXY v1: the backend limits and logs each real client, not nginx", async () => {
    const ports = await allocate()
    // One backend only (nginx skips the other after its connection is refused),
    // so both clients meet the same per-address limit.
    const backend = await startBackend(ports.backends[0], ["--max-connections-per-address", "1", "--debug"])
    await nginx(ports)
    assert.deepStrictEqual(await checkClientAddresses(ports, backend), ["OK", "OK", "BUSY"])
  })
})
