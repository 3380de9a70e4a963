/**
 * `--proxy-protocol` and `--trusted-proxies` on the real command: the flags in
 * `--help`, their validation, the client's address in the logs, and the log
 * line of a connection closed for its header. And, in this process, a bad
 * trusted proxy in the program's defaults (which no flag parser checks):
 * refused when the command is made, as every invalid default.
 */
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "./utils/client.ts"
import { bin, runBin, spawnNode } from "./utils/cliProcess.ts"
import { runCommand } from "./utils/command.ts"
import { v1 } from "./utils/proxyHeaders.ts"

/** Connects from `localAddress` (a loopback address other than 127.0.0.1 to look like another host). */
const connectFrom = (port: number, localAddress: string) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.connect({ port, host: "127.0.0.1", localAddress })
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

describe("NodeCli --proxy-protocol", () => {
  it.live(
    "--help lists the flags with their defaults; a bad --trusted-proxies is refused naming the flag",
    () =>
      Effect.gen(function* () {
        const help = yield* runBin(["--help"])
        assert.match(help.stdout, /--proxy-protocol[^\n]*\(default: false\)/)
        assert.match(help.stdout, /--trusted-proxies[^\n]*\(default: 127\.0\.0\.0\/8,::1\/128\)/)
        const bad = yield* runBin(["--proxy-protocol", "--trusted-proxies", "10.0.0.0/99"])
        assert.strictEqual(bad.code, 2)
        assert.include(bad.stderr, "--trusted-proxies")
      }),
    60_000
  )

  it.live(
    "logs the client's address, and a line with the reason for a peer outside --trusted-proxies",
    () =>
      Effect.gen(function* () {
        const flags = "--port 0 --debug --proxy-protocol --trusted-proxies 127.0.0.1/32,::1"
        const child = yield* spawnNode([bin, ...flags.split(" ")])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /))[1])
        const client = yield* connect(port)
        yield* client.send(Buffer.concat([v1("TCP4", ["198.51.100.7", "127.0.0.1", 40000, port]), Buffer.from("HI")]))
        assert.strictEqual(yield* client.receive(2), "OK")
        yield* child.waitFor(/connection put[^\n]*remoteAddress: '198\.51\.100\.7:40000'/)
        // 127.0.0.2 is loopback, but not in this list.
        const untrusted = yield* connectFrom(port, "127.0.0.2")
        untrusted.write(v1("TCP4", ["198.51.100.8", "127.0.0.1", 40000, port]))
        yield* child.waitFor(/WARN[^\n]*PROXY protocol: closed a connection from 127\.0\.0\.2[^\n]*reason: 'untrusted'/)
      }).pipe(Effect.scoped),
    60_000
  )

  it("a bad trusted proxy in the defaults is refused when the command is made, as every invalid default", () => {
    // Before any flag is read, so neither --check nor a start can take it (NodeCli.check.test.ts: validate too).
    assert.throws(
      () =>
        runCommand(["--host", "127.0.0.1", "--port", "0"], {
          defaults: { proxyProtocol: true, trustedProxies: ["10.0.0.0/99"] }
        }),
      /^Invalid pool manager config: trustedProxies = 10\.0\.0\.0\/99: expected an address or CIDR/
    )
  })
})
