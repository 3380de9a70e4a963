/**
 * The deployment files as their tools read them: HAProxy's and nginx's own
 * configuration checks, and the systemd unit's `systemd-analyze verify`
 * (where this machine has systemd) with its stop timeout above the delay and
 * the drain its command line asks for.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { allocate, binary, deployDir, deployFile, killAll, render, tempDir } from "./harness.ts"

const run = (file: string, args: ReadonlyArray<string>) =>
  ChildProcess.spawnSync(file, args, { encoding: "utf8", timeout: 20_000 })

const seconds = (text: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|min)?$/.exec(text)
  if (match === null) throw new Error(`not a duration: ${text}`)
  return Number(match[1]) * (match[2] === "ms" ? 0.001 : match[2] === "min" ? 60 : 1)
}

describe("deploy/", () => {
  afterEach(killAll)

  it("haproxy.cfg passes haproxy -c, as written and on test ports", async () => {
    const haproxy = binary("haproxy")
    const asWritten = run(haproxy, ["-c", "-f", Path.join(deployDir, "haproxy.cfg")])
    assert.strictEqual(asWritten.status, 0, asWritten.stdout + asWritten.stderr)
    const file = Path.join(tempDir(), "haproxy.cfg")
    Fs.writeFileSync(file, render(deployFile("haproxy.cfg"), await allocate()))
    const rendered = run(haproxy, ["-c", "-f", file])
    assert.strictEqual(rendered.status, 0, rendered.stdout + rendered.stderr)
    assert.notMatch(rendered.stdout + rendered.stderr, /WARNING|ALERT/)
  })

  it("nginx.conf passes nginx -t", () => {
    const dir = tempDir()
    const result = run(binary("nginx"), [
      ...["-t", "-p", dir, "-c", Path.join(deployDir, "nginx.conf"), "-e", "stderr"],
      ...["-g", `pid ${Path.join(dir, "nginx.pid")};`]
    ])
    assert.strictEqual(result.status, 0, result.stderr)
    assert.include(result.stderr, "test is successful")
  })

  it("pool-manager.service passes systemd-analyze verify and gives the drain time to finish", () => {
    const unit = deployFile("pool-manager.service")
    const setting = (name: string) => {
      const match = new RegExp(`^${name}=(.*)$`, "m").exec(unit)
      if (match === null) assert.fail(`${name} is not set`)
      return match[1]!
    }
    assert.strictEqual(setting("KillSignal"), "SIGTERM")
    const command = setting("ExecStart")
    const flag = (name: string) => {
      const match = new RegExp(`--${name} (\\S+)`).exec(command)
      if (match === null) assert.fail(`ExecStart has no --${name}`)
      return seconds(match[1]!)
    }
    assert.isAbove(seconds(setting("TimeoutStopSec")), flag("shutdown-delay") + flag("drain-timeout"))
    let verify: string
    try {
      verify = binary("systemd-analyze")
    } catch {
      // The issue asks for `verify` where systemd exists; the settings above are still checked.
      console.log("[balancers] systemd-analyze is not installed: pool-manager.service was not verified")
      return
    }
    const result = run(verify, ["verify", Path.join(deployDir, "pool-manager.service")])
    assert.strictEqual(result.status, 0, result.stderr)
    // verify reports unparsable settings as warnings, still exiting 0.
    assert.strictEqual(result.stderr.trim(), "", result.stderr)
  })
})
