/**
 * What the protocol benchmark (bench/protocol.ts) measures: for Redis and
 * memcached, the servers (the real one from Debian, the hand-written
 * `node:net` baseline of bench/servers/, the example of packages/examples
 * with an Effect callback and with a synchronous one), the real client's
 * workloads (`redis-benchmark`, `memcslap`), and how to read the client's
 * output into a rate per test.
 */
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Launch } from "./process.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const buildDir = join(benchDir, "build")

/** How a run is sized. */
export interface Sizing {
  /** Requests per test and run (the pipelined workload sends 8 times as many: it is that much faster). */
  readonly requests: number
  /** Connections (redis-benchmark's clients, memcslap's threads). */
  readonly clients: number
  /** Node flags for every Node server alike. */
  readonly nodeFlags: ReadonlyArray<string>
}

export interface ProtocolServer {
  readonly about: string
  /** The program to start, told to listen on 127.0.0.1:`port`. */
  readonly launch: (port: number, sizing: Sizing) => Launch
  /** Why it cannot run (e.g. its example is not in this tree), checked before a run. */
  readonly missing?: () => string | undefined
}

/** One test's result in one run of the client. */
export interface TestRate {
  readonly test: string
  /** Requests per second, as the client reports it. */
  readonly rate: number
}

export interface ClientOutput {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** CPU seconds (user + system) of the client and its threads, or NaN if unknown. */
  readonly cpuSeconds: number
}

export interface ProtocolWorkload {
  readonly about: string
  /** The client's arguments against 127.0.0.1:`port` (`warmup`: a short run whose result is dropped). */
  readonly args: (port: number, sizing: Sizing, warmup: boolean) => ReadonlyArray<string>
  /** The rates of the client's output, or why the run failed (an error, a missing test, nothing done). */
  readonly parse: (
    output: ClientOutput,
    sizing: Sizing,
    warmup: boolean
  ) => { rates: Array<TestRate>; failure?: string }
  /** What the same-round ratio against the raw baseline should reach, per server (the targets). */
  readonly targets: Readonly<Record<string, number>>
}

export interface Protocol {
  readonly name: string
  /** The client program (and its Debian package, for messages). */
  readonly client: string
  readonly clientPackage: string
  /** The real server's name among `servers`: the examples are compared with it too. */
  readonly real: string
  readonly servers: Readonly<Record<string, ProtocolServer>>
  readonly workloads: Readonly<Record<string, ProtocolWorkload>>
}

const exampleFile = (name: string) => join(buildDir, "examples", `${name}.js`)
export const exampleSource = (name: string) => join(dirname(benchDir), "packages", "examples", "src", `${name}.ts`)

const nodeServer = (name: string, file: string, args: ReadonlyArray<string>) => (port: number, sizing: Sizing) => ({
  name,
  argv: [process.execPath, ...sizing.nodeFlags, file, "--port", String(port), ...args],
  ready: { port }
})

const example = (name: string, sync: boolean): ProtocolServer => ({
  about: `packages/examples/src/${name}.ts${sync ? " --sync: a PoolManager.syncCallback" : ": an Effect callback"}`,
  launch: nodeServer(`${name} example`, exampleFile(name), ["--host", "127.0.0.1", ...(sync ? ["--sync"] : [])]),
  missing: () => (existsSync(exampleSource(name)) ? undefined : `${exampleSource(name)} does not exist`)
})

// The unpipelined targets hold for every workload but redis-benchmark -P 16.
const unpipelinedTargets = { example: 0.85, "example-sync": 0.95 }

/** redis-benchmark's --csv output: a header, then `"TEST","rps",...` per test. */
const parseRedisBenchmark = (output: ClientOutput): { rates: Array<TestRate>; failure?: string } => {
  const rates: Array<TestRate> = []
  for (const line of output.stdout.split("\n")) {
    const match = /^"([^"]+)","([\d.]+)"/.exec(line)
    if (match !== null) rates.push({ test: match[1]!, rate: Number(match[2]) })
  }
  // redis-benchmark exits non-zero on an error reply or a lost connection ("We now immediately exit on error").
  const failure =
    output.code !== 0
      ? `redis-benchmark exited with ${output.code ?? output.signal}`
      : rates.length !== redisTests.length
        ? `redis-benchmark reported ${rates.length} tests, expected ${redisTests.length}`
        : rates.some((r) => !(r.rate > 0))
          ? "a test reported no requests per second"
          : undefined
  return failure === undefined ? { rates } : { rates, failure: `${failure}\n${output.stderr}${output.stdout}` }
}

// `-t ping` runs both PING_INLINE and PING_MBULK.
const redisTests = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]

const redisArgs = (pipeline: number) => (port: number, sizing: Sizing, warmup: boolean) => {
  const requests = sizing.requests * (pipeline > 1 ? 8 : 1)
  return [
    ...["-h", "127.0.0.1", "-p", String(port), "-c", String(sizing.clients)],
    ...["-n", String(warmup ? Math.max(1000, Math.round(requests / 10)) : requests)],
    ...(pipeline > 1 ? ["-P", String(pipeline)] : []),
    ...["-t", "ping,set,get,incr,mset", "--csv"]
  ]
}

export const redis: Protocol = {
  name: "redis",
  client: "redis-benchmark",
  clientPackage: "redis-tools",
  real: "redis-server",
  servers: {
    "redis-server": {
      about: "Debian's redis-server, persistence off (--save '' --appendonly no), not daemonized",
      launch: (port) => ({
        name: "redis-server",
        argv: ["redis-server", "--save", "", "--appendonly", "no", "--port", String(port), "--bind", "127.0.0.1"],
        ready: { port }
      })
    },
    raw: {
      about: "bench/servers/raw-redis.ts: RESP by hand on node:net, one write per chunk, the baseline",
      launch: nodeServer("raw-redis", join(buildDir, "raw-redis.js"), [])
    },
    example: example("redis", false),
    "example-sync": example("redis", true)
  },
  workloads: {
    unpipelined: {
      about: "redis-benchmark -c CLIENTS -n REQUESTS -t ping,set,get,incr,mset",
      args: redisArgs(1),
      parse: parseRedisBenchmark,
      targets: unpipelinedTargets
    },
    "pipelined-16": {
      about: "the same with -P 16 (16 commands in flight per connection) and 8 × REQUESTS",
      args: redisArgs(16),
      parse: parseRedisBenchmark,
      targets: { example: 0.75, "example-sync": 0.9 }
    }
  }
}

/**
 * memcslap's report: `Time to get   50000 keys by   50 threads:   1.265 seconds.`,
 * the keys being those that succeeded (a miss or an error is not counted, and an
 * error is printed on stderr as `Fatal error ...`); it exits 0 either way.
 */
const parseMemcslap =
  (test: string) =>
  (output: ClientOutput, sizing: Sizing, warmup: boolean): { rates: Array<TestRate>; failure?: string } => {
    const match = new RegExp(`Time to ${test}\\s+(\\d+) keys by\\s+(\\d+) threads:\\s+([\\d.]+) seconds`).exec(
      output.stdout
    )
    const done = Number(match?.[1])
    const seconds = Number(match?.[3])
    const expected = memcslapPerThread(sizing, warmup) * sizing.clients
    const rates = match === null || !(seconds > 0) ? [] : [{ test, rate: done / seconds }]
    const failure =
      output.code !== 0
        ? `memcslap exited with ${output.code ?? output.signal}`
        : match === null
          ? "memcslap printed no result line"
          : done !== expected
            ? `memcslap completed ${done} of ${expected} ${test}s`
            : /Fatal error|Failed/.test(output.stderr)
              ? "memcslap reported errors"
              : rates.length === 0
                ? "memcslap reported no time"
                : undefined
    return failure === undefined ? { rates } : { rates, failure: `${failure}\n${output.stderr}${output.stdout}` }
  }

/** Operations per memcslap thread (`--execute-number`); a warm-up does a tenth. */
const memcslapPerThread = (sizing: Sizing, warmup: boolean) => {
  const each = Math.max(1, Math.ceil(sizing.requests / sizing.clients))
  return warmup ? Math.max(20, Math.round(each / 10)) : each
}

// --binary is never given: the example speaks the ASCII protocol.
const memcslapArgs = (test: string) => (port: number, sizing: Sizing, warmup: boolean) => [
  `--servers=127.0.0.1:${port}`,
  `--test=${test}`,
  `--concurrency=${sizing.clients}`,
  `--execute-number=${memcslapPerThread(sizing, warmup)}`
]

export const memcached: Protocol = {
  name: "memcached",
  client: "memcslap",
  clientPackage: "libmemcached-tools",
  real: "memcached",
  servers: {
    memcached: {
      about: "Debian's memcached (-U 0: no UDP), not daemonized, its default 4 threads",
      launch: (port) => ({
        name: "memcached",
        // memcached refuses to run as root without -u; elsewhere -u is ignored.
        argv: ["memcached", "-l", "127.0.0.1", "-p", String(port), "-U", "0", "-u", "nobody"],
        ready: { port }
      })
    },
    raw: {
      about:
        "bench/servers/raw-memcached.ts: the ASCII protocol by hand on node:net, one write per chunk, the baseline",
      launch: nodeServer("raw-memcached", join(buildDir, "raw-memcached.js"), [])
    },
    example: example("memcached", false),
    "example-sync": example("memcached", true)
  },
  workloads: {
    get: {
      about:
        "memcslap --test=get --concurrency=CLIENTS: each thread gets REQUESTS/CLIENTS random keys of the ones loaded",
      args: memcslapArgs("get"),
      parse: parseMemcslap("get"),
      targets: unpipelinedTargets
    },
    set: {
      about: "memcslap --test=set: each thread sets REQUESTS/CLIENTS keys, values of 50 to 5000 bytes",
      args: memcslapArgs("set"),
      parse: parseMemcslap("set"),
      targets: unpipelinedTargets
    }
  }
}

export const protocols: Readonly<Record<string, Protocol>> = { redis, memcached }
