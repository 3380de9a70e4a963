/**
 * The deployment files as their tools read them: HAProxy's and nginx's own
 * configuration checks, and nginx.conf naming the Debian package of its
 * stream module, the one CI installs. (The systemd unit: units.test.ts.)
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { deployDir, killAll, tempDir } from "../harness/index.ts"
import { allocate, binary, deployFile, render } from "./harness.ts"

const run = (file: string, args: ReadonlyArray<string>) =>
  ChildProcess.spawnSync(file, args, { encoding: "utf8", timeout: 20_000 })

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

  it("nginx.conf names the package of its stream module, which provides it here and which CI installs", () => {
    const conf = deployFile("nginx.conf")
    const module = /^load_module (\S+);/m.exec(conf)?.[1]
    assert.isDefined(module)
    const named = /apt-get install ([a-z0-9.+-]+)/.exec(conf)?.[1]
    assert.strictEqual(named, "libnginx-mod-stream")
    // Debian's own record of which package installed the module file.
    const owner = run("dpkg-query", ["-S", module!])
    assert.strictEqual(owner.status, 0, owner.stderr)
    assert.match(owner.stdout, new RegExp(`^${named}: ${module}$`, "m"))
    const install = Fs.readFileSync(Path.join(deployDir, "../.ci/install-balancers"), "utf8")
    assert.include(install, `nginx=nginx-light,${named}`)
    assert.match(install, new RegExp(`apt-get install -y -qq ${named} `))
  })
})
