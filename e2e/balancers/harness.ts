/**
 * What the balancer tests share: the deployment files of `deploy/` with
 * their ports replaced by free loopback ports, the real HAProxy and nginx
 * started on them (a missing binary throws: the test fails, it never skips),
 * `pool-manager` backends started with the flags the files document, and
 * the checks that the HAProxy and nginx tests both run (balancing, client
 * addresses through the PROXY protocol).
 *
 * Processes, ports, temporary folders, client requests and the cleanup
 * (`killAll`, in `afterEach`) come from the e2e harness (`../harness/`).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import {
  cliBin,
  deployDir,
  freePorts,
  get,
  type Outcome,
  type ProcessHandle,
  reporter,
  request,
  type ServerProcess,
  spawnNode,
  spawnProcess,
  tally,
  tempDir,
  waitForPort
} from "../harness/index.ts"

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

/** A balancer (HAProxy or nginx) running in the foreground, with its output. */
export type Balancer = ProcessHandle

/** Starts HAProxy in the foreground on `config` (a rendered `deploy/haproxy.cfg`). */
export const startHaproxy = async (config: string, frontend: number): Promise<Balancer> => {
  const dir = tempDir()
  const file = Path.join(dir, "haproxy.cfg")
  Fs.writeFileSync(file, config)
  const haproxy = spawnProcess(binary("haproxy"), ["-db", "-f", file])
  await waitForPort(frontend, () => haproxy.output())
  return haproxy
}

/** Starts nginx in the foreground on `config` (a rendered `deploy/nginx.conf`), its pid file in a temporary folder. */
export const startNginx = async (config: string, frontend: number): Promise<Balancer> => {
  const dir = tempDir()
  const file = Path.join(dir, "nginx.conf")
  Fs.writeFileSync(file, config)
  const nginx = spawnProcess(binary("nginx"), [
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

/** `pool_connections_accepted_total` of a backend, from its `/metrics`. */
export const acceptedBy = async (backend: Backend): Promise<number> => {
  const { body } = await get(`http://127.0.0.1:${backend.metrics}/metrics`)
  const match = /^pool_connections_accepted_total(?:\{[^}]*\})? (\d+)/m.exec(body)
  if (match === null) throw new Error("no pool_connections_accepted_total in /metrics")
  return Number(match[1])
}

/** Prints a measured figure in the test output. */
export const report = reporter("balancers")

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
