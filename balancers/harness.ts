/**
 * What the balancer tests share: the deployment files of `deploy/` with
 * their ports replaced by free loopback ports, the real HAProxy and nginx
 * started on them (a missing binary throws: the test fails, it never skips),
 * `pool-manager` backends started with the flags the files document, and
 * clients bound to a chosen loopback address.
 *
 * Every process started here is killed by `killAll` (call it in `afterEach`).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { cliBin, killAll as killNodes, type ServerProcess, spawnNode } from "../reliability/harness.ts"

export { sleep, waitUntil } from "../reliability/harness.ts"

/** The `deploy/` folder. */
export const deployDir = fileURLToPath(new URL("../deploy/", import.meta.url))

/** A deployment file's text. */
export const deployFile = (name: string): string => Fs.readFileSync(Path.join(deployDir, name), "utf8")

/** The absolute path of `name` on PATH or in the sbin folders (where Debian puts haproxy and nginx); throws if none. */
export const binary = (name: string): string => {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"]
  for (const dir of dirs) {
    const file = Path.join(dir, name)
    try {
      Fs.accessSync(file, Fs.constants.X_OK)
      return file
    } catch {}
  }
  throw new Error(
    `${name} is not installed: run .ci/install-balancers (apt-get install haproxy nginx-light libnginx-mod-stream)`
  )
}

/** `count` distinct free TCP ports on 127.0.0.1 below the ephemeral range (bound then released: free a moment ago). */
export const freePorts = async (count: number): Promise<Array<number>> => {
  // Below Linux's ephemeral range (32768 and up), so no outgoing connection of
  // HAProxy, nginx or a client can take a port between this check and the
  // moment a backend (re)binds it, as it does across a rolling restart.
  const listen = (port: number) =>
    new Promise<Net.Server | undefined>((resolve) => {
      const server = Net.createServer()
      server.once("error", () => resolve(undefined))
      server.listen(port, "127.0.0.1", () => resolve(server))
    })
  const servers: Array<Net.Server> = []
  let candidate = 20_000 + Math.floor(Math.random() * 12_000)
  for (let tries = 0; servers.length < count; tries++) {
    if (tries > 1_000) throw new Error("no free ports between 20000 and 32767 on 127.0.0.1")
    const server = await listen(candidate)
    if (server !== undefined) servers.push(server)
    candidate = candidate >= 32_767 ? 20_000 : candidate + 1
  }
  const ports = servers.map((server) => (server.address() as Net.AddressInfo).port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

/** The ports of one test's setup, standing for the ports written in the deployment files. */
export interface Ports {
  readonly frontend: number
  readonly backends: readonly [Backend, Backend]
}

/** One backend's ports: its listener, its metrics (`/healthz`) and its agent-check endpoint. */
export interface Backend {
  readonly port: number
  readonly metrics: number
  readonly agent: number
}

/** Fresh ports for a frontend and two backends. */
export const allocate = async (): Promise<Ports> => {
  const [frontend, ...rest] = await freePorts(7)
  const backend = (i: number): Backend => ({ port: rest[i]!, metrics: rest[i + 2]!, agent: rest[i + 4]! })
  return { frontend: frontend!, backends: [backend(0), backend(1)] }
}

/**
 * A deployment file with the ports it documents (frontend 6263, backends
 * 6301/6302, metrics 9401/9402, agents 6401/6402) replaced by `ports`.
 * Throws if one of them is not in the file (so the tests follow the file).
 */
export const render = (text: string, ports: Ports, optional: ReadonlyArray<number> = [9401, 9402, 6401, 6402]) => {
  const table: Array<readonly [number, number]> = [
    [6263, ports.frontend],
    [6301, ports.backends[0].port],
    [6302, ports.backends[1].port],
    [9401, ports.backends[0].metrics],
    [9402, ports.backends[1].metrics],
    [6401, ports.backends[0].agent],
    [6402, ports.backends[1].agent]
  ]
  let result = text
  for (const [documented, actual] of table) {
    const pattern = new RegExp(`(127\\.0\\.0\\.1:|port )${documented}\\b`, "g")
    if (!pattern.test(result) && !optional.includes(documented)) {
      throw new Error(`port ${documented} is not in the deployment file`)
    }
    result = result.replace(pattern, `$1${actual}`)
  }
  return result
}

/** A process other than node (a balancer) with its output. */
export interface Balancer {
  readonly child: ChildProcess.ChildProcess
  readonly output: () => string
  readonly stop: () => Promise<void>
}

const balancers = new Set<ChildProcess.ChildProcess>()

const tempDirs: Array<string> = []

/** A temporary folder, removed by `killAll`. */
export const tempDir = (): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pool-manager-balancers-"))
  tempDirs.push(dir)
  return dir
}

const spawnBalancer = (file: string, args: ReadonlyArray<string>): Balancer => {
  const child = ChildProcess.spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] })
  balancers.add(child)
  let output = ""
  child.stdout!.on("data", (chunk) => {
    output += chunk
  })
  child.stderr!.on("data", (chunk) => {
    output += chunk
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.once("exit", () => balancers.delete(child))
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

/** Starts HAProxy in the foreground on `config` (a rendered `deploy/haproxy.cfg`). */
export const startHaproxy = async (config: string, frontend: number): Promise<Balancer> => {
  const dir = tempDir()
  const file = Path.join(dir, "haproxy.cfg")
  Fs.writeFileSync(file, config)
  const haproxy = spawnBalancer(binary("haproxy"), ["-db", "-f", file])
  await waitForPort(frontend, () => haproxy.output())
  return haproxy
}

/** Starts nginx in the foreground on `config` (a rendered `deploy/nginx.conf`), its pid file in a temporary folder. */
export const startNginx = async (config: string, frontend: number): Promise<Balancer> => {
  const dir = tempDir()
  const file = Path.join(dir, "nginx.conf")
  Fs.writeFileSync(file, config)
  const nginx = spawnBalancer(binary("nginx"), [
    "-p",
    dir,
    "-c",
    file,
    "-e",
    "stderr",
    "-g",
    `pid ${Path.join(dir, "nginx.pid")}; daemon off;`
  ])
  await waitForPort(frontend, () => nginx.output())
  return nginx
}

/** Resolves once 127.0.0.1:`port` accepts connections. */
export const waitForPort = async (port: number, details: () => string, timeout = 10_000): Promise<void> => {
  const started = Date.now()
  while (true) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (ok) return
    if (Date.now() - started > timeout) throw new Error(`nothing listens on ${port} after ${timeout} ms:\n${details()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** `pool-manager` that prints `handled N` (messages its callback handled) when it exits. */
export const countingServer = fileURLToPath(new URL("./counting-server.ts", import.meta.url))

/**
 * Starts `pool-manager` (or `script`, a variant of it) as backend `backend`
 * with the flags the deployment files document (`--shutdown-delay 1s` unless
 * `shutdownDelay` says otherwise), and `flags`.
 */
export const startBackend = (
  backend: Backend,
  flags: ReadonlyArray<string> = [],
  options: { readonly script?: string; readonly shutdownDelay?: string } = {}
): Promise<ServerProcess> =>
  spawnNode([
    options.script ?? cliBin,
    ...`--host 127.0.0.1 --port ${backend.port} --proxy-protocol --metrics-port ${backend.metrics}`.split(" "),
    ...`--agent-port ${backend.agent} --shutdown-delay ${options.shutdownDelay ?? "1s"}`.split(" "),
    ...flags
  ])

/** Kills every process started here (and by the reliability harness), and removes the temporary folders. */
export const killAll = async (): Promise<void> => {
  await Promise.all(
    Array.from(balancers).map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
    )
  )
  await killNodes()
  for (const dir of tempDirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
}

/** How one request through a balancer ended: `OK`, `ERROR_SERVER_BUSY`, or what went wrong. */
export type Outcome = "OK" | "BUSY" | `error: ${string}`

/**
 * One request as a client makes it: connect from `localAddress` to
 * 127.0.0.1:`port`, send `HI`,
 * read the reply, close. Never rejects. With `hold`, the connection stays
 * open after an `OK` (returned as `socket`) for the caller to close.
 */
export const request = (
  port: number,
  options: {
    readonly localAddress?: string
    readonly hold?: boolean
    readonly timeout?: number
    /** Send a PROXY v1 header first, as a balancer would (to reach a `--proxy-protocol` backend directly). */
    readonly proxyHeader?: boolean
  } = {}
): Promise<{ readonly outcome: Outcome; readonly socket: Net.Socket }> =>
  new Promise((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1", localAddress: options.localAddress ?? "127.0.0.1" })
    let text = ""
    let settled = false
    const finish = (outcome: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (!(options.hold === true && outcome === "OK")) socket.destroy()
      resolve({ outcome, socket })
    }
    const timer = setTimeout(() => finish(`error: no reply in ${options.timeout ?? 5000} ms`), options.timeout ?? 5000)
    socket.on("connect", () => {
      if (options.proxyHeader === true) {
        socket.write(`PROXY TCP4 ${socket.localAddress} 127.0.0.1 ${socket.localPort} ${port}\r\n`)
      }
      socket.write("HI")
    })
    socket.on("data", (chunk) => {
      text += chunk
      if (text === "OK") finish("OK")
      else if (text === "ERROR_SERVER_BUSY") finish("BUSY")
      else if (!("ERROR_SERVER_BUSY".startsWith(text) || text === "O")) finish(`error: reply ${JSON.stringify(text)}`)
    })
    socket.on("error", (error: NodeJS.ErrnoException) => finish(`error: ${error.code ?? error.message}`))
    socket.on("close", () => finish(`error: closed after ${JSON.stringify(text)}`))
  })

/** Counts outcomes by kind. */
export const tally = (outcomes: ReadonlyArray<Outcome>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
  return counts
}

/** `pool_connections_accepted_total` of a backend, from its `/metrics`. */
export const acceptedBy = async (backend: Backend): Promise<number> => {
  const response = await fetch(`http://127.0.0.1:${backend.metrics}/metrics`, { signal: AbortSignal.timeout(5000) })
  const match = /^pool_connections_accepted_total(?:\{[^}]*\})? (\d+)/m.exec(await response.text())
  if (match === null) throw new Error("no pool_connections_accepted_total in /metrics")
  return Number(match[1])
}

/** Prints a measured figure in the test output. */
export const report = (row: string, values: Record<string, unknown>): void => {
  console.log(`[balancers] ${row}: ${JSON.stringify(values)}`)
}

/**
 * Sends 20 requests through the balancer on `ports.frontend` and checks that
 * all were answered `OK` and that each backend took at least 5 of them.
 */
export const checkBalancing = async (ports: Ports, label: string): Promise<void> => {
  // Waiting for the balancer's port made a connection too: count from here.
  const before = await Promise.all(ports.backends.map(acceptedBy))
  const outcomes: Array<Outcome> = []
  for (let i = 0; i < 20; i++) outcomes.push((await request(ports.frontend)).outcome)
  if (JSON.stringify(tally(outcomes)) !== JSON.stringify({ OK: 20 })) {
    throw new Error(`${label}: expected 20 OK, got ${JSON.stringify(tally(outcomes))}`)
  }
  const after = await Promise.all(ports.backends.map(acceptedBy))
  const accepted = after.map((n, i) => n - before[i]!)
  report(label, { accepted })
  if (accepted[0]! + accepted[1]! !== 20 || Math.min(...accepted) < 5) {
    throw new Error(`${label}: the backends accepted ${accepted.join(" and ")} of 20`)
  }
}

/**
 * With one backend started with `--max-connections-per-address 1 --debug`
 * behind the balancer: a client from 127.0.0.2 and one from 127.0.0.3 are
 * served, a second one from 127.0.0.2 is refused, and the backend's log names
 * each by its own address. Returns the three outcomes.
 */
export const checkClientAddresses = async (ports: Ports, backend: ServerProcess): Promise<Array<Outcome>> => {
  const first = await request(ports.frontend, { localAddress: "127.0.0.2", hold: true })
  const other = await request(ports.frontend, { localAddress: "127.0.0.3", hold: true })
  const second = await request(ports.frontend, { localAddress: "127.0.0.2", hold: true })
  for (const { socket } of [first, other, second]) socket.destroy()
  await backend.waitForOutput(/connection put[^\n]*remoteAddress: '127\.0\.0\.2:\d+'/)
  await backend.waitForOutput(/connection put[^\n]*remoteAddress: '127\.0\.0\.3:\d+'/)
  await backend.waitForOutput(/connection refused[\s\S]{0,40}remoteAddress: '127\.0\.0\.2:\d+'/)
  return [first.outcome, other.outcome, second.outcome]
}
