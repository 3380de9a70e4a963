/**
 * `deploy/pool-manager@.service` and its instances' settings
 * (`deploy/pool-manager/a.env`, `b.env`): `systemd-analyze verify` of the
 * instances, the settings operators rely on (environment file, no hard-wired
 * PROXY protocol, Node by an absolute path, a reload guarded by the config
 * check), agreement with `deploy/haproxy.cfg`, and the unit's command lines
 * run for real: start from the environment file, reload only what passes `--check`.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { cliBin, deployDir, killAll, request, spawnProcess, tempDir, waitUntil } from "../harness/index.ts"
import { allocate, binary, deployFile } from "./harness.ts"

const unitName = "pool-manager@.service"
const unit = deployFile(unitName)
const instances = ["a", "b"] as const

const settings = (name: string): Array<string> =>
  Array.from(unit.matchAll(new RegExp(`^${name}=(.*)$`, "gm")), (match) => match[1]!)
const setting = (name: string): string => {
  const values = settings(name)
  assert.strictEqual(values.length, 1, `${name} set once in ${unitName}`)
  return values[0]!
}

/** An environment file's variables (comments and blank lines left out). */
const parseEnv = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)])
  )
const envOf = (instance: string) => parseEnv(deployFile(`pool-manager/${instance}.env`))

const seconds = (text: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|min)?$/.exec(text)
  if (match === null) throw new Error(`not a duration: ${text}`)
  return Number(match[1]) * (match[2] === "ms" ? 0.001 : match[2] === "min" ? 60 : 1)
}

/** A command line of the unit as systemd runs it: `${VAR}` one word (empty when unset), `$VAR` split. */
const expand = (line: string, env: Record<string, string | undefined>): Array<string> =>
  line.split(/\s+/).flatMap((word) => {
    const braced = /^\$\{([A-Z_]+)\}$/.exec(word)
    if (braced !== null) return [env[braced[1]!] ?? ""]
    const bare = /^\$([A-Z_]+)$/.exec(word)
    if (bare !== null) return (env[bare[1]!] ?? "").split(/\s+/).filter((part) => part !== "")
    return [word]
  })

// The installed paths of the unit, and what stands for them in the repository.
const installedNode = "/opt/pool-manager/node_modules/node/bin/node"
const installedBin = "/opt/pool-manager/node_modules/@pool-manager/node/dist/bin/pool-manager.js"
const local = (args: Array<string>): Array<string> =>
  args.flatMap((arg) =>
    arg === installedNode
      ? [process.execPath, "--conditions=@pool-manager/source"]
      : arg === installedBin
        ? [cliBin]
        : [arg]
  )

afterEach(killAll)

const runSync = (args: Array<string>, env: Record<string, string>) =>
  ChildProcess.spawnSync(args[0]!, args.slice(1), {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, ...env }
  })

describe("deploy/pool-manager@.service", () => {
  it("passes systemd-analyze verify for pool-manager@a and @b, and flags a broken copy", () => {
    const verify = binary("systemd-analyze")
    // A root with the system's units, this unit and its environment files, and
    // stand-ins for the programs its command lines name (verify checks they are
    // executable; the test below runs the real ones).
    const root = tempDir()
    const systemDir = Path.join(root, "etc/systemd/system")
    Fs.mkdirSync(systemDir, { recursive: true })
    Fs.cpSync("/usr/lib/systemd/system", Path.join(root, "usr/lib/systemd/system"), { recursive: true })
    Fs.mkdirSync(Path.join(root, "etc/pool-manager"), { recursive: true })
    for (const instance of instances) {
      Fs.copyFileSync(
        Path.join(deployDir, "pool-manager", `${instance}.env`),
        Path.join(root, "etc/pool-manager", `${instance}.env`)
      )
    }
    const programs = new Set([...settings("ExecStart"), ...settings("ExecReload")].map((line) => line.split(/\s+/)[0]!))
    for (const program of programs) {
      assert.isTrue(program.startsWith("/"), `${program} is an absolute path`)
      const file = Path.join(root, program)
      Fs.mkdirSync(Path.dirname(file), { recursive: true })
      Fs.writeFileSync(file, "#!/bin/sh\n", { mode: 0o755 })
    }
    const check = (text: string) => {
      Fs.writeFileSync(Path.join(systemDir, unitName), text)
      return ChildProcess.spawnSync(
        verify,
        ["verify", `--root=${root}`, ...instances.map((instance) => `pool-manager@${instance}.service`)],
        { encoding: "utf8", timeout: 60_000 }
      )
    }
    const result = check(unit)
    assert.strictEqual(result.status, 0, result.stdout + result.stderr)
    // verify reports unparsable settings as warnings, still exiting 0.
    assert.strictEqual(result.stderr.trim(), "", result.stderr)
    const broken = check(unit.replace("KillMode=mixed", "KillMode=sideways"))
    assert.include(broken.stderr, "Failed to parse kill mode", "verify reads this file")
  })

  it("takes its settings from /etc/pool-manager/%i.env, runs Node by an absolute path, leaves PROXY protocol opt-in", () => {
    assert.strictEqual(setting("EnvironmentFile"), "/etc/pool-manager/%i.env")
    const start = setting("ExecStart").split(/\s+/)
    assert.deepStrictEqual(
      start,
      [installedNode, installedBin],
      "ExecStart: Node and the bin, every setting from the environment"
    )
    assert.notInclude(unit, "/usr/bin/env")
    assert.strictEqual(setting("KillSignal"), "SIGTERM")
    const [check, signal] = settings("ExecReload")
    assert.deepStrictEqual(check!.split(/\s+/), [installedNode, installedBin, "--check"])
    assert.strictEqual(signal, "/bin/kill -HUP $MAINPID")
    for (const instance of instances) {
      const env = envOf(instance)
      // A stop waits for the lame-duck period and the drain the instance asks for.
      assert.isAbove(
        seconds(setting("TimeoutStopSec")),
        seconds(env.POOL_MANAGER_SHUTDOWN_DELAY!) + seconds(env.POOL_MANAGER_DRAIN_TIMEOUT!),
        instance
      )
    }
  })

  it("agrees with haproxy.cfg: one instance per backend, its ports, and PROXY protocol where HAProxy sends it", () => {
    const haproxy = deployFile("haproxy.cfg")
    const servers = Array.from(
      haproxy.matchAll(/^\s*server pm-(\w+) (\S+):(\d+) port (\d+) agent-port (\d+)/gm),
      ([, name, host, port, metrics, agent]) => ({ name: name!, host, port, metrics, agent })
    )
    assert.deepStrictEqual(
      servers.map((server) => server.name),
      [...instances]
    )
    assert.deepStrictEqual(Fs.readdirSync(Path.join(deployDir, "pool-manager")).sort(), ["a.env", "b.env"])
    const sendsProxy = /default-server[^\n]*\bsend-proxy-v2\b/.test(haproxy)
    assert.isTrue(sendsProxy)
    for (const server of servers) {
      const env = envOf(server.name)
      assert.deepStrictEqual(
        [env.POOL_MANAGER_HOST, env.POOL_MANAGER_PORT, env.POOL_MANAGER_METRICS_PORT, env.POOL_MANAGER_AGENT_PORT],
        [server.host, server.port, server.metrics, server.agent],
        `pool-manager@${server.name} and server pm-${server.name}`
      )
      assert.strictEqual(env.POOL_MANAGER_PROXY_PROTOCOL, "true", `${server.name}: HAProxy sends send-proxy-v2`)
    }
  })

  it("runs as written: ExecStart serves from the environment file; ExecReload signals only a valid config", async () => {
    const ports = await allocate()
    const dir = tempDir()
    const config = Path.join(dir, "pool.yaml")
    Fs.writeFileSync(config, "maxWorkersCount: 3\n")
    const backend = ports.backends[0]
    // a.env as written, on free ports.
    const env = {
      ...envOf("a"),
      POOL_MANAGER_PORT: String(backend.port),
      POOL_MANAGER_METRICS_PORT: String(backend.metrics),
      POOL_MANAGER_AGENT_PORT: String(backend.agent),
      POOL_MANAGER_CONFIG: config
    }
    const [command, ...args] = local(expand(setting("ExecStart"), env))
    const { child, output } = spawnProcess(command!, args, { env })
    const details = () => `\n${output()}`
    await waitUntil(
      () => /listening on 127\.0\.0\.1:\d+ .*max-workers=3 /.test(output()),
      "listening",
      30_000,
      20,
      details
    )
    // PROXY protocol on, from the environment file: a client must come through the balancer (or send the header).
    assert.strictEqual((await request(backend.port, { proxyHeader: true })).outcome, "OK")
    const health = await fetch(`http://127.0.0.1:${backend.metrics}/healthz`)
    assert.strictEqual(health.status, 200)

    const reload = (variables: Record<string, string>) => {
      const [check, signal] = settings("ExecReload").map((line) =>
        local(expand(line, { ...variables, MAINPID: String(child.pid) }))
      )
      const checked = runSync(check!, variables)
      // systemd runs the next ExecReload line only when this one succeeded.
      if (checked.status === 0) assert.strictEqual(runSync(signal!, variables).status, 0)
      return checked
    }

    Fs.writeFileSync(config, "maxWorkersCount: 5\n")
    const valid = reload(env)
    assert.strictEqual(valid.status, 0, valid.stdout + valid.stderr)
    await waitUntil(() => /config reloaded from .*max-workers=5 /.test(output()), "the reload", 30_000, 20, details)

    Fs.writeFileSync(config, "maxWorkersCount: five\n")
    const invalid = reload(env)
    assert.strictEqual(invalid.status, 1)
    assert.include(invalid.stderr, "maxWorkersCount (line 1, column 1)")
    assert.isNull(child.exitCode)
    assert.notMatch(output(), /config reload failed/, "an invalid config never reached the process")
    // An instance without a config file passes the check on its environment alone, so its reload goes on to
    // SIGHUP, which re-reads its TLS files (e2e/reliability/service-reload.test.ts reloads such an instance).
    const withoutConfig = { ...env, POOL_MANAGER_CONFIG: "" }
    const [check] = settings("ExecReload").map((line) => local(expand(line, withoutConfig)))
    const checked = runSync(check!, withoutConfig)
    assert.strictEqual(checked.status, 0, checked.stdout + checked.stderr)
    assert.match(checked.stdout, /configuration is valid: /)

    child.kill("SIGTERM")
    const code = await new Promise<number | null>((resolve) => child.once("exit", (exit) => resolve(exit)))
    assert.strictEqual(code, 0, details())
  }, 60_000)
})
