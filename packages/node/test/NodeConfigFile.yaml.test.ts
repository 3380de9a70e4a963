/**
 * YAML config files, errors located by line and column without the file's
 * content, `pool-manager --check-config FILE`, and `pool-manager --check` (the
 * guard of a unit's `ExecReload`): exit 0 for a valid configuration, 1 otherwise.
 */

import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ManagerConfig } from "@pool-manager/core"
import { Duration, Effect } from "effect"
import { NodeConfigFile } from "../src/index.ts"
import { certificate } from "./utils/certificate.ts"
import { bin, runBin, spawnNode, tempDir } from "./utils/cliProcess.ts"

const parseError = (text: string, path: string) =>
  Effect.runSync(
    NodeConfigFile.parse(text, path).pipe(
      Effect.flip,
      Effect.map((error) => error.message),
      // A crash of the parser shows in the assertion's message, not as a thrown error.
      Effect.catchDefect((defect) => Effect.succeed(`defect: ${String(defect)}`))
    )
  )

// Text that must never be echoed: what a config path pointing at the wrong file would show.
const secret = "root:$6$s3cr3tHash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"

describe("NodeConfigFile YAML", () => {
  it("reads .yaml and .yml as YAML, with the same fields and durations as JSON", () => {
    const text = "# the pool\nmaxWorkersCount: 4\nclientsDeadline: 5s\nqueueTimeout: 1500\nadmissionPolicy: queue\n"
    for (const path of ["pool.yaml", "pool.yml", "POOL.YAML"]) {
      const config = Effect.runSync(
        Effect.flatMap(NodeConfigFile.parse(text, path), (input) => ManagerConfig.make(input))
      )
      assert.deepStrictEqual(
        [config.maxWorkersCount, Duration.toMillis(config.clientsDeadline), Duration.toMillis(config.queueTimeout)],
        [4, 5000, 1500]
      )
      assert.strictEqual(config.admissionPolicy, "queue")
    }
    // Comments only: every setting commented out sets nothing.
    assert.deepStrictEqual(Effect.runSync(NodeConfigFile.parse("# maxWorkersCount: 4\n", "pool.yaml")), {})
  })

  it("names the file, the line and the column of every error, never the content", () => {
    assert.strictEqual(
      parseError("maxWorkersCount: 3\nmaxWorker: 4\n", "pool.yaml").split(" (known")[0],
      `config file pool.yaml: unknown field "maxWorker" (line 2, column 1)`
    )
    assert.include(
      parseError("queueSize: 2\nbufferSize: -1\n", "pool.yaml"),
      "config file pool.yaml: bufferSize (line 2, column 1): expected a number >= 0"
    )
    assert.include(parseError("a: 1\n  b: 2\n", "pool.yml"), "config file pool.yml: not valid YAML at line 1, column")
    assert.include(
      parseError("maxWorkersCount: 1\nmaxWorkersCount: 2\n", "p.yaml"),
      "at line 2, column 1 (a key given twice)"
    )
    assert.include(parseError("- 1\n- 2\n", "pool.yaml"), "expected a YAML mapping")
    assert.include(
      parseError(`{\n  "queueSize": 1,\n  "bufferSize": x\n}`, "pool.json"),
      "not valid JSON at line 3, column 17"
    )
    assert.include(
      parseError(`{"a": 1, "a": 2}`, "pool.json"),
      "not valid JSON at line 1, column 10 (a key given twice)"
    )
    assert.include(parseError("", "pool.json"), "not valid JSON at the end of the file")
    // A file that is not a config at all: located, and nothing of it quoted.
    for (const path of ["shadow", "shadow.json", "shadow.yaml"]) {
      const message = parseError(secret, path)
      assert.include(message, `config file ${path}: `)
      for (const piece of ["root", "s3cr3t", "daemon", "19000", "99999"]) assert.notInclude(message, piece, message)
    }
  })

  it("locates what only fails once the value is built, and a file's format by the end of its name", () => {
    const unresolved = parseError("maxWorkersCount: *workers\n", "pool.yaml")
    assert.strictEqual(
      unresolved,
      "config file pool.yaml: not valid YAML at line 1, column 18 (an alias with no anchor before it)"
    )
    assert.notInclude(unresolved, "workers\n")
    // Each level nine aliases of the one before: past the parser's bound, refused rather than built.
    const laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for (const [name, previous] of [
      ["b", "a"],
      ["c", "b"],
      ["d", "c"],
      ["e", "d"],
      ["f", "e"]
    ]) {
      laughs.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(", ")}]`)
    }
    assert.strictEqual(
      parseError(`${laughs.join("\n")}\n`, "pool.yaml"),
      "config file pool.yaml: not valid YAML: its aliases expand too far"
    )
    // Only a name ending in .yaml or .yml is YAML.
    assert.include(
      parseError("maxWorkersCount: 3\n", "pool.yaml.json"),
      "config file pool.yaml.json: not valid JSON at"
    )
    assert.include(
      parseError(`{${"\n".repeat(12)}  "queueSize": 1,\n}`, "pool.json"),
      "not valid JSON at line 14, column 1"
    )
  })

  it("words the parser's other errors, and gives no position it cannot find", () => {
    // An error without words of its own is named by its code, in lower-case words.
    assert.strictEqual(
      parseError("maxWorkersCount: &one &two 1\n", "pool.yaml"),
      "config file pool.yaml: not valid YAML at line 1, column 23 (multiple anchors)"
    )
    // A comment is YAML but not JSON, and V8 says nowhere where: the start of the file.
    assert.strictEqual(
      parseError("# the pool\n{}\n", "pool.json"),
      "config file pool.json: not valid JSON at line 1, column 1"
    )
    // A key that is a number is named without its content, and without a position.
    assert.strictEqual(
      parseError("1: 2\nqueueSize: 3\n", "pool.yaml").split(" (known")[0],
      "config file pool.yaml: unknown field (a key)"
    )
    // Lines broken by a lone CR (old Mac files): valid JSON that the YAML parser misreads, so not located.
    assert.strictEqual(
      parseError(`{"bufferSize": -1,\r"queueSize": 1}`, "pool.json"),
      "config file pool.json: bufferSize: expected a number >= 0"
    )
  })

  it.live(
    "--check-config exits 0 for a valid file (with the flags and environment over it), 1 naming the line otherwise",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const good = Path.join(dir, "good.yaml")
        const bad = Path.join(dir, "bad.yml")
        Fs.writeFileSync(good, "minWorkersCount: 2\nmaxWorkersCount: 3\n")
        Fs.writeFileSync(bad, "minWorkersCount: 2\nmaxWorkersCount: three\n")
        const [valid, invalid, json] = yield* Effect.all(
          [
            runBin(["--check-config", good]),
            runBin(["--check-config", bad]),
            runBin(["--check-config", good, "--log-format", "json", "--max-workers", "8"])
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(valid.code, 0)
        assert.match(valid.stdout, /config file \S+good\.yaml is valid: min-workers=2 max-workers=3 /)
        assert.notInclude(valid.stdout, "listening")
        assert.strictEqual(invalid.code, 1)
        assert.include(invalid.stderr, `config file ${bad}: maxWorkersCount (line 2, column 1)`)
        assert.notInclude(invalid.stderr, "three")
        assert.strictEqual(json.code, 0)
        const line = JSON.parse(json.stdout.trim()) as { annotations: Record<string, unknown> }
        assert.deepStrictEqual([line.annotations.valid, line.annotations["max-workers"]], [true, 8])

        // The environment takes part: a bad variable fails the check as it would fail a start.
        const child = yield* spawnNode([bin, "--check-config", good], { env: { POOL_MANAGER_MAX_MESSAGE_BYTES: "0" } })
        assert.strictEqual(yield* child.exit(), 2)
        assert.include(child.stderr(), "POOL_MANAGER_MAX_MESSAGE_BYTES")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "--check checks what a start would use: the environment, the config file it names, the TLS pair",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const bad = Path.join(dir, "bad.yaml")
        Fs.writeFileSync(bad, "maxWorkersCount: three\n")
        // Two pairs as PEM files: each key with its own certificate, and one key with the other's.
        const [one, two] = (yield* Effect.all([certificate, certificate])).map((pair, i) => {
          const key = Path.join(dir, `key${i}.pem`)
          const cert = Path.join(dir, `cert${i}.pem`)
          Fs.writeFileSync(key, pair.key)
          Fs.writeFileSync(cert, pair.cert)
          return { key, cert }
        }) as [{ key: string; cert: string }, { key: string; cert: string }]
        const check = (env: Record<string, string>) =>
          Effect.gen(function* () {
            const child = yield* spawnNode([bin, "--check"], { env })
            return { code: yield* child.exit(), stdout: child.stdout(), stderr: child.stderr() }
          }).pipe(Effect.scoped)
        const [plain, broken, matched, mismatched] = yield* Effect.all(
          [
            check({ POOL_MANAGER_MAX_WORKERS: "4" }),
            check({ POOL_MANAGER_CONFIG: bad }),
            check({ POOL_MANAGER_TLS_KEY: one.key, POOL_MANAGER_TLS_CERT: one.cert }),
            check({ POOL_MANAGER_TLS_KEY: one.key, POOL_MANAGER_TLS_CERT: two.cert })
          ],
          { concurrency: "unbounded" }
        )
        // No config file: the environment alone is the configuration, and nothing listens.
        assert.strictEqual(plain.code, 0, plain.stderr)
        assert.match(plain.stdout, /configuration is valid: .*max-workers=4 /)
        assert.notInclude(plain.stdout, "listening")
        assert.strictEqual(broken.code, 1)
        assert.include(broken.stderr, `config file ${bad}: maxWorkersCount (line 1, column 1)`)
        assert.strictEqual(matched.code, 0, matched.stderr)
        // A key that does not match its certificate would fail every handshake after a reload: the check refuses it.
        assert.strictEqual(mismatched.code, 1)
        assert.include(mismatched.stderr, `cannot use --tls-key ${one.key} and --tls-cert ${two.cert}`)
      }).pipe(Effect.scoped),
    60_000
  )
})
