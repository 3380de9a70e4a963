/**
 * `NodeCliConfig`: how the layers of settings combine (defaults < config file
 * < flags) when the worker bounds contradict each other, the server's own
 * settings the flags make (address, unix socket, TLS and its files, PROXY
 * protocol, metrics, agent check), and the listening line. NodeCli.test.ts
 * has the tracing and admission fields.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { NetAddress } from "effect/net"
import { NodeCliConfig } from "../src/index.ts"
import { noFlags } from "./utils/cliProcess.ts"

const make = (
  flags: Partial<NodeCliConfig.Settings>,
  defaults: NodeCliConfig.Defaults = {},
  file: Parameters<typeof NodeCliConfig.makeConfig>[2] = {}
) => Effect.runSync(NodeCliConfig.makeConfig({ ...noFlags, ...flags }, defaults, file))

/** The worker bounds the layers give, or the error's message. */
const workers = (
  flags: { readonly min?: number; readonly max?: number },
  defaults: NodeCliConfig.Defaults,
  file: { readonly minWorkersCount?: number; readonly maxWorkersCount?: number } = {}
) =>
  Effect.runSync(
    NodeCliConfig.makeConfig(
      {
        ...noFlags,
        minWorkersCount: Option.fromUndefinedOr(flags.min),
        maxWorkersCount: Option.fromUndefinedOr(flags.max)
      },
      defaults,
      file
    ).pipe(
      Effect.map(({ manager }) => [manager.minWorkersCount, manager.maxWorkersCount] as const),
      Effect.catch((error) => Effect.succeed(error.message))
    )
  )

describe("NodeCliConfig", () => {
  it("moves the other worker bound only when the one set contradicts it", () => {
    const fiveToTen = { minWorkersCount: 5, maxWorkersCount: 10 }
    // Within the other bound: nothing moves.
    assert.deepStrictEqual(workers({ min: 7 }, fiveToTen), [7, 10])
    assert.deepStrictEqual(workers({ max: 8 }, fiveToTen), [5, 8])
    assert.deepStrictEqual(workers({ min: 10 }, fiveToTen), [10, 10])
    assert.deepStrictEqual(workers({ max: 5 }, fiveToTen), [5, 5])
    // Past it: the other follows.
    assert.deepStrictEqual(workers({ min: 11 }, fiveToTen), [11, 11])
    assert.deepStrictEqual(workers({ max: 4 }, fiveToTen), [4, 4])
    // Both given: both kept when they agree, an error when they do not.
    assert.deepStrictEqual(workers({ min: 20, max: 30 }, fiveToTen), [20, 30])
    assert.deepStrictEqual(workers({ min: 1, max: 2 }, fiveToTen), [1, 2])
    assert.include(workers({ min: 3, max: 2 }, fiveToTen), "minWorkersCount")
    // No maximum (0) contradicts no minimum; a maximum of 0 keeps the minimum.
    assert.deepStrictEqual(workers({ min: 20 }, { minWorkersCount: 5, maxWorkersCount: 0 }), [20, 0])
    assert.deepStrictEqual(workers({ max: 0 }, fiveToTen), [5, 0])
    // The config file is a layer too: under the flags, over the defaults.
    assert.deepStrictEqual(workers({}, fiveToTen, { maxWorkersCount: 3 }), [3, 3])
    assert.deepStrictEqual(workers({ min: 4 }, fiveToTen, { maxWorkersCount: 3 }), [4, 4])
    assert.deepStrictEqual(workers({ max: 6 }, fiveToTen, { minWorkersCount: 8 }), [6, 6])
  })

  it("makes the server's settings from the flags: address or unix socket, TLS files, PROXY protocol, endpoints", () => {
    const plain = make({})
    assert.deepStrictEqual(plain.server, {
      host: "127.0.0.1",
      port: 6263,
      busyReply: "ERROR_SERVER_BUSY",
      shutdownDelay: plain.server.shutdownDelay,
      maxPendingConnections: 1024
    })
    assert.deepStrictEqual(
      [plain.tlsFiles, plain.metrics, plain.agent, plain.otlp],
      [undefined, undefined, undefined, undefined]
    )
    assert.deepStrictEqual([plain.processes, plain.clusterMode, plain.configFile], [1, "auto", undefined])

    const full = make({
      host: Option.some("0.0.0.0"),
      port: Option.some(7000),
      path: Option.some("/run/pool.sock"),
      busyReply: Option.some("BUSY"),
      tlsKey: Option.some("/etc/key.pem"),
      tlsCert: Option.some("/etc/cert.pem"),
      tlsCa: Option.some("/etc/ca.pem"),
      tlsClientAuth: Option.some("require"),
      tlsMinVersion: Option.some("TLSv1.3"),
      proxyProtocol: Option.some(true),
      trustedProxies: Option.some(["10.0.0.0/8"]),
      metricsPort: Option.some(9464),
      metricsHost: Option.some("0.0.0.0"),
      agentPort: Option.some(5555),
      agentHost: Option.some("0.0.0.0"),
      config: Option.some("/etc/pool.yaml")
    })
    assert.strictEqual(full.server.path, "/run/pool.sock")
    assert.deepStrictEqual([full.server.host, full.server.port, full.server.busyReply], ["0.0.0.0", 7000, "BUSY"])
    assert.deepStrictEqual(full.server.proxyProtocol, { trustedProxies: ["10.0.0.0/8"] })
    assert.strictEqual(full.server.tls?.minVersion, "TLSv1.3")
    assert.isString(full.server.tls?.ciphers)
    assert.strictEqual(full.server.tlsClientAuth, "require")
    assert.deepStrictEqual(full.tlsFiles, { key: "/etc/key.pem", cert: "/etc/cert.pem", ca: "/etc/ca.pem" })
    assert.deepStrictEqual(full.metrics, { host: "0.0.0.0", port: 9464 })
    assert.deepStrictEqual(full.agent, { host: "0.0.0.0", port: 5555 })
    assert.strictEqual(full.configFile, "/etc/pool.yaml")

    // A key without its certificate serves no TLS (the command refuses it earlier); no CA, no `ca`.
    const keyOnly = make({ tlsKey: Option.some("/etc/key.pem") })
    assert.deepStrictEqual([keyOnly.server.tls, keyOnly.tlsFiles], [undefined, undefined])
    const certOnly = make({ tlsCert: Option.some("/etc/cert.pem") })
    assert.deepStrictEqual([certOnly.server.tls, certOnly.tlsFiles], [undefined, undefined])
    const noCa = make({ tlsKey: Option.some("k"), tlsCert: Option.some("c") })
    assert.deepStrictEqual(noCa.tlsFiles, { key: "k", cert: "c" })
    assert.strictEqual(noCa.server.tlsClientAuth, "none")
  })

  it("the listening line: the address (unix: for a socket), every setting, then tls and processes when given", () => {
    const { manager } = make({ maxWorkersCount: Option.some(4) })
    const inet = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6263)
    const settings = NodeCliConfig.describeConfig(manager)
    assert.strictEqual(
      NodeCliConfig.listeningLine("pool-manager", inet, manager),
      `pool-manager listening on 127.0.0.1:6263 ${settings}`
    )
    assert.strictEqual(
      NodeCliConfig.listeningLine("edge", inet, manager, { tls: true, processes: 2 }),
      `edge listening on 127.0.0.1:6263 ${settings} tls=true processes=2`
    )
    assert.strictEqual(
      NodeCliConfig.listeningLine("edge", inet, manager, { tls: false }),
      `edge listening on 127.0.0.1:6263 ${settings}`
    )
    assert.strictEqual(
      NodeCliConfig.listeningLine("edge", NetAddress.unixPathAddress("/run/pool.sock"), manager),
      `edge listening on unix:/run/pool.sock ${settings}`
    )
    assert.include(settings, "max-workers=4 ")
  })
})
