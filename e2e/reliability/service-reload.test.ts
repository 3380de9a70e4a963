/**
 * Row "systemctl reload": every systemd unit of `deploy/` (`*.service`) is run
 * as systemd would run it, and reloaded as systemd would reload it: the
 * unit's own `ExecStart` command line (its flags, `Environment=` and
 * `EnvironmentFile=` as deploy/ ships it, a template as its first instance,
 * and the ports made 0 so tests do not collide), then each
 * `ExecReload` command through `/bin/sh` with `$MAINPID` set. The process
 * must log the reload, stay alive, still answer, and stop with code 0 on
 * `KillSignal`. (A SIGHUP that terminated the service would pass
 * unnoticed by systemd: it counts a death by SIGHUP as a clean exit.)
 *
 * The program the unit names (`pool-manager` on PATH, or a Node binary and
 * the package's script) is replaced by this repository's bin; a `pool-manager`
 * on PATH, for reload guards such as a config check, is a shim running it too.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { cliBin, deployDir, killAll, request, sleep, spawnNode, tempDir } from "../harness/index.ts"

afterEach(killAll)

const units = Fs.readdirSync(deployDir).filter((name) => name.endsWith(".service"))

/** The `[Service]` settings of a unit: each key's values in order (continuation lines joined). */
const serviceSettings = (text: string): Map<string, Array<string>> => {
  const settings = new Map<string, Array<string>>()
  let section = ""
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const trimmed = line.trim()
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue
    const header = /^\[(.+)\]$/.exec(trimmed)
    if (header !== null) {
      section = header[1]!
      continue
    }
    const eq = trimmed.indexOf("=")
    if (section !== "Service" || eq < 0) continue
    const key = trimmed.slice(0, eq).trim()
    settings.set(key, [...(settings.get(key) ?? []), trimmed.slice(eq + 1).trim()])
  }
  return settings
}

/** Splits a command line into words as systemd does (quotes; no globbing). */
const words = (line: string): Array<string> =>
  Array.from(line.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g), (match) => match[1] ?? match[2] ?? match[3]!)

const specifiers = (text: string, unit: string, instance: string) =>
  text.replace(/%%|%[iInN]/g, (spec) => (spec === "%%" ? "%" : spec === "%n" || spec === "%N" ? unit : instance))

// A template unit (`name@.service`) runs as the first instance whose settings `deploy/name/` holds
// (`a.env` for `name@a`); a plain unit as `test`.
const instanceOf = (unit: string): string => {
  const template = /^(.+)@\.service$/.exec(unit)
  if (template === null) return "test"
  const envs = Fs.readdirSync(Path.join(deployDir, template[1]!)).filter((name) => name.endsWith(".env"))
  expect(envs.length, `deploy/${template[1]}/ holds the instances' settings`).toBeGreaterThan(0)
  return envs.sort()[0]!.slice(0, -".env".length)
}

// An `EnvironmentFile=` as installed (`/etc/x/a.env`) is read from where deploy/ keeps it (`deploy/x/a.env`);
// a leading `-` makes it optional, as for systemd.
const environmentFile = (setting: string): Record<string, string> => {
  const optional = setting.startsWith("-")
  const installed = setting.replace(/^-/, "")
  const local = Path.join(deployDir, installed.replace(/^\/etc\//, ""))
  if (!Fs.existsSync(local)) {
    expect(optional, `${installed} is shipped in deploy/`).toBe(true)
    return {}
  }
  const env: Record<string, string> = {}
  for (const line of Fs.readFileSync(local, "utf8").split("\n")) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (match !== null) env[match[1]!] = match[2]!.trim().replace(/^"(.*)"$/, "$1")
  }
  return env
}

// systemd's variable expansion: a lone `$VAR` word becomes its words (none when unset), `${VAR}` its value.
const expand = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): Array<string> =>
  args.flatMap((arg) => {
    const lone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(arg)
    if (lone !== null) return (env[lone[1]!] ?? "").split(/\s+/).filter((word) => word !== "")
    return [arg.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? "")]
  })

const isPoolManager = (word: string) => /^pool-manager(\.[cm]?[jt]s)?$/.test(Path.basename(word))

const portFlags = new Set(["--port", "--metrics-port", "--agent-port"])

describe.each(units)("deploy/%s", (unit) => {
  it("runs its ExecStart, survives its ExecReload (logging the reload), still answers, and stops with code 0", async () => {
    const instance = instanceOf(unit)
    const settings = serviceSettings(
      specifiers(Fs.readFileSync(Path.join(deployDir, unit), "utf8"), unit.replace("@.", `@${instance}.`), instance)
    )
    const execStart = settings.get("ExecStart")?.at(-1)
    expect(execStart, `${unit} has an ExecStart`).toBeDefined()
    const reloads = settings.get("ExecReload") ?? []
    expect(reloads.length, `${unit} has an ExecReload`).toBeGreaterThan(0)
    expect(settings.get("KillSignal")?.at(-1) ?? "SIGTERM").toMatch(/^(SIG)?(TERM|INT)$/)

    const env: Record<string, string> = {}
    for (const file of settings.get("EnvironmentFile") ?? []) Object.assign(env, environmentFile(file))
    for (const value of settings.get("Environment") ?? []) {
      for (const pair of words(value)) {
        const eq = pair.indexOf("=")
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1)
      }
    }
    // Settings the unit takes from the environment: ports 0, so nothing collides.
    Object.assign(env, { POOL_MANAGER_PORT: "0", POOL_MANAGER_METRICS_PORT: "0", POOL_MANAGER_AGENT_PORT: "0" })

    const command = words(execStart!.replace(/^[-@:+!]+/, ""))
    const program = command.findIndex(isPoolManager)
    expect(program, `${unit}'s ExecStart runs pool-manager: ${execStart}`).toBeGreaterThanOrEqual(0)
    const args = expand(command.slice(program + 1), env).map((arg, i, all) =>
      i > 0 && portFlags.has(all[i - 1]!) ? "0" : arg
    )
    const proxy = args.includes("--proxy-protocol") || env.POOL_MANAGER_PROXY_PROTOCOL === "true"

    const dir = tempDir("pool-manager-unit-")
    const shim = Path.join(dir, "pool-manager")
    Fs.writeFileSync(
      shim,
      `#!/bin/sh\nexec '${process.execPath}' --conditions=@pool-manager/source '${cliBin}' "$@"\n`,
      { mode: 0o755 }
    )
    const server = await spawnNode([cliBin, ...args], { env })
    const ask = async () => (await request(server.port, { proxyHeader: proxy, timeout: 10_000 })).outcome
    expect(await ask()).toBe("OK")

    // `systemctl reload` twice: each time every ExecReload line in order (systemd stops at the first that fails).
    for (const round of [0, 1]) {
      const from = server.output().length
      for (const reload of reloads) {
        const reloadWords = words(reload.replace(/^[-@:+!]+/, ""))
        const named = reloadWords.findIndex(isPoolManager)
        const line = (named < 0 ? reloadWords : [shim, ...reloadWords.slice(named + 1)])
          .map((word) => `'${word.replaceAll("'", `'\\''`)}'`)
          .join(" ")
          .replaceAll(/\$\{?MAINPID\}?/g, String(server.pid))
        const result = ChildProcess.spawnSync("/bin/sh", ["-c", line], {
          env: { ...process.env, ...env, MAINPID: String(server.pid), PATH: `${dir}:${process.env.PATH}` },
          encoding: "utf8",
          timeout: 20_000
        })
        expect(result.status, `ExecReload ${reload} (round ${round}):\n${result.stdout}${result.stderr}`).toBe(0)
      }
      await server.waitForOutput(/SIGHUP|reload/i, 10_000, from)
      await sleep(300)
      expect(server.isRunning(), `${unit}: alive after ExecReload\n${server.output()}`).toBe(true)
      expect(await ask()).toBe("OK")
    }
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
    expect(server.output()).toMatch(/stopped/)
  })
})
