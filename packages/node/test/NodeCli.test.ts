/**
 * The `pool-manager` command, run as a child process the way a user runs it:
 * `--help`, rejected flags, serving on port 0, and a graceful SIGINT.
 */

import { fileURLToPath, pathToFileURL } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { NetAddress } from "effect/net"
import { NodeCli, NodeCliConfig } from "../src/index.ts"
import { durationExpected } from "../src/internal/cliFlags.ts"
import { connect, fillPool } from "./utils/client.ts"
import { bin, noFlags, runBin, spawnNode } from "./utils/cliProcess.ts"

/** Starts a server and waits for its `listening on` line; returns it with its port. */
const startServer = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const child = yield* spawnNode(args)
    const match = yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+) /)
    return { child, port: Number(match[1]) }
  })

describe("NodeCli", () => {
  it("parses durations as people type them", () => {
    const millis = (text: string) => Option.map(NodeCliConfig.parseDuration(text), Duration.toMillis)
    assert.deepStrictEqual(millis("3s"), Option.some(3000))
    assert.deepStrictEqual(millis("500 millis"), Option.some(500))
    assert.deepStrictEqual(millis("500ms"), Option.some(500))
    assert.deepStrictEqual(millis("2 seconds"), Option.some(2000))
    assert.deepStrictEqual(millis("1.5m"), Option.some(90_000))
    assert.deepStrictEqual(millis("0"), Option.some(0))
    // A number alone could be seconds or milliseconds: refused.
    assert.deepStrictEqual(millis("250"), Option.none())
    assert.isTrue(Option.isSome(NodeCliConfig.parseDuration("infinity")))
    for (const bad of ["-1s", "soon", "3x", "", "1e3s", "NaN", "x5s", "5s!", "1.s"])
      assert.isTrue(Option.isNone(NodeCliConfig.parseDuration(bad)), bad)
    // Zero in any spelling, case and blanks ignored, fractions to the millisecond.
    for (const zero of ["00", "0.00", "0.0s"]) assert.deepStrictEqual(millis(zero), Option.some(0), zero)
    assert.deepStrictEqual(millis(" 3S "), Option.some(3000))
    assert.deepStrictEqual(millis("0.5s"), Option.some(500))
    assert.deepStrictEqual(millis("1.25s"), Option.some(1250))
    // What a bad value is told: a hint for a number without a unit, else the forms it takes.
    const ambiguous = (number: string) =>
      `a duration with a unit: ${number} alone is ambiguous (${number}s? ${number}ms?)`
    assert.strictEqual(durationExpected(" 5 "), ambiguous("5"))
    assert.strictEqual(durationExpected("1.5"), ambiguous("1.5"))
    assert.strictEqual(durationExpected("1.25"), ambiguous("1.25"))
    for (const other of ["soon", "x5", "5x", "1.x"]) {
      assert.strictEqual(durationExpected(other), "a duration >= 0 such as 3s, 500ms, 500 millis or 2 seconds", other)
    }
  })

  it.live(
    "--help lists every flag with its default",
    () =>
      Effect.gen(function* () {
        const { code, stdout } = yield* runBin(["--help"])
        assert.strictEqual(code, 0)
        const expected = {
          host: "127.0.0.1",
          port: "6263",
          path: "none",
          "min-workers": "0",
          "max-workers": "0",
          "buffer-size": "5120",
          "clients-deadline": "3s",
          "idle-worker-timeout": "2s",
          "max-message-bytes": "1048576",
          "drain-timeout": "30s",
          "admission-policy": "reject",
          "queue-size": "100",
          "queue-timeout": "1s",
          "max-connections-per-address": "0",
          "max-messages-per-connection": "0",
          "busy-reply": "ERROR_SERVER_BUSY",
          debug: "false",
          "tls-key": "none",
          "tls-cert": "none",
          config: "none",
          "metrics-port": "off",
          "metrics-host": "127.0.0.1",
          "log-format": "text",
          processes: "1",
          "cluster-mode": "auto",
          framing: "go"
        }
        for (const [flag, fallback] of Object.entries(expected)) {
          const line = stdout.split("\n").find((l) => l.trimStart().startsWith(`--${flag} `))
          assert.isDefined(line, `--${flag} is listed in:\n${stdout}`)
          assert.include(line, `(default: ${fallback})`)
        }
      }),
    60_000
  )

  it.live(
    "rejects bad flags and values with exit code 2, a message naming the flag and a pointer at --help (not the help)",
    () =>
      Effect.gen(function* () {
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
          [
            ["--max-workers", "-1"],
            ["--max-workers", "-1"]
          ],
          [
            ["--min-workers", "5", "--max-workers", "2"],
            ["--min-workers", "--max-workers"]
          ],
          [
            ["--port", "abc"],
            ["--port", "abc"]
          ],
          [["--bogus"], ["--bogus"]],
          [
            ["--cluster-mode", "sideways"],
            ["--cluster-mode", "sideways"]
          ],
          [
            ["--processes", "2", "--cluster-mode", "reuseport", "--path", "/tmp/pool-manager-never.sock"],
            ["--cluster-mode reuseport", "--path"]
          ]
        ]
        const results = yield* Effect.forEach(cases, ([args]) => runBin(args), { concurrency: "unbounded" })
        results.forEach((result, i) => {
          const [args, mentions] = cases[i]!
          assert.strictEqual(result.code, 2, `exit code for ${args.join(" ")}`)
          for (const mention of mentions) assert.include(result.stderr, mention, `message for ${args.join(" ")}`)
          assert.include(result.stderr, "Run 'pool-manager --help' for the flags.")
          assert.strictEqual(result.stdout, "", `nothing on stdout for ${args.join(" ")}: no help printed`)
        })
      }),
    60_000
  )

  // The same validation in-process (faster than a process per case).
  it.effect("names the flag for every kind of bad value", () =>
    Effect.gen(function* () {
      const cli = Command.runWith(NodeCli.command({ callback: () => Effect.void }), { version: "test" })
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--port", "70000"], "Invalid value for flag --port"],
        [["--buffer-size", "NaN"], "Invalid value for flag --buffer-size"],
        [["--min-workers", "1.5"], "Invalid value for flag --min-workers"],
        [["--max-message-bytes", "0"], "Invalid value for flag --max-message-bytes"],
        [["--clients-deadline", "soon"], "Invalid value for flag --clients-deadline"],
        [
          ["--clients-deadline", "5"],
          `Invalid value for flag --clients-deadline: "5". Expected: a duration with a unit`
        ],
        [["--drain-timeout", "30"], "(30s? 30ms?)"],
        [["--drain-timeout", "-5s"], "--drain-timeout"],
        [["--min-workers", "3", "--max-workers", "1"], "Invalid value for flag --min-workers (minWorkersCount): 3"],
        [["--admission-policy", "maybe"], "--admission-policy"],
        [["--queue-size", "-1"], "Invalid value for flag --queue-size"],
        [["--queue-timeout", "soon"], "Invalid value for flag --queue-timeout"],
        [["--max-connections-per-address", "x"], "Invalid value for flag --max-connections-per-address"],
        [["--max-messages-per-connection", "-2"], "Invalid value for flag --max-messages-per-connection"],
        [["--metrics-port", "70000"], "Invalid value for flag --metrics-port"],
        [["--log-format", "xml"], "--log-format"],
        [["--processes", "0"], "Invalid value for flag --processes"],
        [["--config", "/nonexistent/pool.json"], "Invalid value for flag --config"],
        [["--tls-key", bin], "--tls-key and --tls-cert go together: --tls-cert is missing"],
        [["--tls-cert", bin], "--tls-key and --tls-cert go together: --tls-key is missing"],
        [
          ["--message-span-sample-rate", "1.5"],
          "Invalid value for flag --message-span-sample-rate (messageSpanSampleRate): 1.5. expected a number from 0 to 1"
        ],
        [["--otlp-endpoint", "localhost:4318"], "--otlp-endpoint"],
        [["--otlp-endpoint", "ftp://127.0.0.1"], "--otlp-endpoint"],
        [["--service-name", ""], "--service-name"]
      ]
      for (const [args, expected] of cases) {
        const error = yield* Effect.flip(cli(args))
        assert.strictEqual(error._tag, "ShowHelp", args.join(" "))
        const messages = error._tag === "ShowHelp" ? error.errors.map((e) => e.message).join("\n") : ""
        assert.include(messages, expected, args.join(" "))
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it("lets a flag override a default it contradicts, but not another flag", () => {
    const defaults = { minWorkersCount: 5, maxWorkersCount: 10 }
    const workers = (args: Partial<NodeCliConfig.Settings>) =>
      Effect.runSync(
        NodeCliConfig.makeConfig({ ...noFlags, ...args }, defaults).pipe(
          Effect.map(({ manager }) => [manager.minWorkersCount, manager.maxWorkersCount]),
          Effect.catch((error) => Effect.succeed(error.message))
        )
      )
    assert.deepStrictEqual(workers({}), [5, 10])
    assert.deepStrictEqual(workers({ maxWorkersCount: Option.some(3) }), [3, 3])
    assert.deepStrictEqual(workers({ minWorkersCount: Option.some(20) }), [20, 20])
    assert.deepStrictEqual(workers({ maxWorkersCount: Option.some(0) }), [5, 0])
    assert.include(workers({ minWorkersCount: Option.some(4), maxWorkersCount: Option.some(2) }), "minWorkersCount")
  })

  it("sets the tracing settings from their flags and defaults; no export without an endpoint", () => {
    const make = (args: Partial<NodeCliConfig.Settings>, defaults: NodeCliConfig.Defaults = {}) =>
      Effect.runSync(NodeCliConfig.makeConfig({ ...noFlags, ...args }, defaults))
    const none = make({ serviceName: Option.some("ignored") })
    assert.isUndefined(none.otlp)
    assert.strictEqual(none.manager.messageSpanSampleRate, 0)
    const flagged = make({
      otlpEndpoint: Option.some("http://127.0.0.1:4318"),
      serviceName: Option.some("edge"),
      messageSpanSampleRate: Option.some(0.25)
    })
    assert.deepStrictEqual(flagged.otlp, { endpoint: "http://127.0.0.1:4318", serviceName: "edge" })
    assert.strictEqual(flagged.manager.messageSpanSampleRate, 0.25)
    const defaulted = make({}, { otlpEndpoint: "https://collector:4318", messageSpanSampleRate: 0.5 })
    assert.deepStrictEqual(defaulted.otlp, { endpoint: "https://collector:4318", serviceName: undefined })
    assert.strictEqual(defaulted.manager.messageSpanSampleRate, 0.5)
  })

  it("sets the admission and per-connection fields from their flags, and shows them in the listening line", () => {
    const config = Effect.runSync(
      NodeCliConfig.makeConfig({
        ...noFlags,
        admissionPolicy: Option.some("queue"),
        queueSize: Option.some(5),
        queueTimeout: Option.some(Duration.seconds(2)),
        maxConnectionsPerAddress: Option.some(3),
        maxMessagesPerConnection: Option.some(7),
        metricsPort: Option.some(0),
        logFormat: Option.some("json"),
        processes: Option.some(2)
      })
    )
    const { manager } = config
    assert.deepStrictEqual(
      [manager.admissionPolicy, manager.queueSize, Duration.toMillis(manager.queueTimeout)],
      ["queue", 5, 2000]
    )
    assert.deepStrictEqual([manager.maxConnectionsPerAddress, manager.maxMessagesPerConnection], [3, 7])
    assert.deepStrictEqual(config.metrics, { host: "127.0.0.1", port: 0 })
    assert.deepStrictEqual([config.logFormat, config.processes, config.tlsFiles], ["json", 2, undefined])
    const line = NodeCliConfig.listeningLine(
      "pool-manager",
      NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6263),
      manager
    )
    assert.include(
      line,
      "admission-policy=queue queue-size=5 queue-timeout=2s max-connections-per-address=3 max-messages-per-connection=7"
    )
  })

  it.live(
    "serves OK on --port 0, refuses the client beyond --max-workers, and exits 0 on SIGINT",
    () =>
      Effect.gen(function* () {
        const { child, port } = yield* startServer([bin, "--port", "0", "--max-workers", "2"])
        assert.match(child.stdout(), /pool-manager listening on 127\.0\.0\.1:\d+ min-workers=0 max-workers=2 /)
        const refused = yield* fillPool(port, 2)
        assert.strictEqual(refused.received(), "ERROR_SERVER_BUSY")
        child.process.kill("SIGINT")
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "on SIGINT, answers every request already in flight, then exits 0",
    () =>
      Effect.gen(function* () {
        // A server whose callback takes 500 ms, so the requests are still in the
        // callback when the signal arrives.
        const script = `
          const { Effect } = await import("effect")
          const { run } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL("../src/NodeCli.ts", import.meta.url))).href)})
          run({
            name: "slow",
            args: ["--port", "0"],
            callback: (conn, _body, len) =>
              Effect.sync(() => console.log("handling")).pipe(
                Effect.andThen(Effect.sleep("500 millis")),
                Effect.andThen(conn.write(len > 0 ? "OK" : "ERROR")),
                Effect.ignore
              )
          })`
        const { child, port } = yield* startServer(["--input-type=module", "--eval", script])
        const clients = []
        for (let i = 0; i < 3; i++) {
          const client = yield* connect(port)
          yield* client.send("HI!")
          clients.push(client)
        }
        yield* child.waitFor(/(handling\n[\s\S]*){3}/)
        child.process.kill("SIGINT")
        for (const client of clients) {
          assert.strictEqual(yield* client.receive(2), "OK")
          yield* client.closed()
        }
        assert.strictEqual(yield* child.exit(), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})
