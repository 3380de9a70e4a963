/**
 * Server processes for the benchmarks (bench/harness.ts, bench/protocol.ts):
 * starting one (a Node program or a real server such as `redis-server`) and
 * waiting until it serves, stopping it, and sampling its CPU time and RSS,
 * and the machine's busy time, over a measurement window. Linux only (/proc).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import * as Net from "node:net"
import { createInterface } from "node:readline"

/** How to start one server process and how to know it serves. */
export interface Launch {
  /** For messages. */
  readonly name: string
  /** The program and its arguments (a Node server: the Node binary, its flags, the file, the server's arguments). */
  readonly argv: ReadonlyArray<string>
  /**
   * How to know it serves: a stdout line whose first group is the port (`strict`: any other line before it is an
   * error, as the bench's own servers print nothing else), or a port the server was told to listen on, polled until
   * it accepts a connection (for programs whose logs are not ours: `redis-server`, `memcached`, the examples).
   */
  readonly ready: { readonly line: RegExp; readonly strict: boolean } | { readonly port: number }
  /** Runs on this CPU only (taskset), or anywhere. */
  readonly cpu?: number
}

export interface RunningServer {
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  /** The last 8,000 characters of its stderr (and of its stdout once ready, for servers polled on a port). */
  readonly stderr: () => string
  /** Resolves once the process exited and its output is read to the end. */
  readonly closed: Promise<number | null>
}

/** A loopback port nobody listens on right now (the kernel's pick; a server then binds it by number). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address()
      server.close(() =>
        address !== null && typeof address !== "string" ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Starts a server and waits until it serves (20 s at most). */
export const startServer = (launch: Launch): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const { name, ready } = launch
    // The shell raises the soft fd limit to the hard one, then execs the server, so the pid is the server's.
    const child = spawn(
      "sh",
      [
        "-c",
        'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        ...(launch.cpu === undefined ? [] : ["taskset", "-c", String(launch.cpu)]),
        ...launch.argv
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000)
    }
    child.stderr!.on("data", keep)
    const closed = new Promise<number | null>((done) => child.once("close", (code) => done(code)))
    let waiting = true
    const fail = (error: Error) => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      reject(error)
    }
    const succeed = (port: number) => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      if (child.pid === undefined) return reject(new Error(`${name} server has no pid`))
      resolve({ child, pid: child.pid, port, stderr: () => output, closed })
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      fail(new Error(`${name} server did not serve within 20 s\n${output}`))
    }, 20_000)
    child.on("exit", (code, signal) =>
      fail(new Error(`${name} server exited before serving (code ${code}, signal ${signal})\n${output}`))
    )
    if ("port" in ready) {
      // Its stdout is a log: keep its tail with stderr's.
      child.stdout!.on("data", keep)
      const poll = async () => {
        while (waiting) {
          if (await accepts(ready.port)) return succeed(ready.port)
          await new Promise((done) => setTimeout(done, 50))
        }
      }
      void poll()
      return
    }
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      const match = ready.line.exec(line)
      if (match?.[1] === undefined) {
        if (!ready.strict) return // a log line before the one we wait for
        child.kill("SIGKILL")
        fail(new Error(`${name} server printed "${line}" instead of a line matching ${ready.line}\n${output}`))
        return
      }
      lines.removeAllListeners("line")
      // Keep reading, so a chatty server never blocks on a full pipe.
      child.stdout!.resume()
      succeed(Number(match[1]))
    })
  })

/**
 * Seconds a server may take to stop on SIGTERM before the measurement fails:
 * closing 10,000 connections can take an Effect-based server several seconds
 * on a busy machine, but anything near the pool's drainTimeout (30 s) is a
 * stop that waited for something that never ended.
 */
const stopLimitSeconds = 20

/**
 * Sends SIGTERM and waits for the exit and the end of its output; SIGKILL
 * after 45 s, past the pool's default drainTimeout, so a pool server that
 * hangs in its drain gets to log what it was still waiting for.
 */
export const stopServer = async (
  server: RunningServer
): Promise<{ code: number | null; seconds: number; threads?: string }> => {
  server.child.removeAllListeners("exit")
  const start = performance.now()
  let threads: string | undefined
  const timer = setTimeout(() => {
    // Where it hangs, for the failure's message: twice in CI a plain node:net server printed its SIGTERM handler's
    // last line and was still running here.
    threads = threadStates(server.pid)
    server.child.kill("SIGKILL")
  }, 45_000)
  if (server.child.exitCode === null) server.child.kill("SIGTERM")
  const code = await server.closed
  clearTimeout(timer)
  return { code, seconds: (performance.now() - start) / 1000, ...(threads === undefined ? {} : { threads }) }
}

/** Each thread of `pid`: its name, its state and the kernel function it waits in (from /proc). */
const threadStates = (pid: number): string => {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8").trim()
    } catch {
      return "?"
    }
  }
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((tid) => {
        const dir = `/proc/${pid}/task/${tid}`
        const state = /\) (\S)/.exec(read(`${dir}/stat`))?.[1] ?? "?"
        return `${tid} ${read(`${dir}/comm`)} ${state} ${read(`${dir}/wchan`)}`
      })
      .join("\n")
  } catch (error) {
    return `threads unreadable: ${String(error)}`
  }
}

/** Why a stop went wrong (an unclean exit, or one slower than stopLimitSeconds), with the server's stderr; else undefined. */
export const stopFailure = (
  stopped: { readonly code: number | null; readonly seconds: number; readonly threads?: string },
  stderr: string
): string | undefined =>
  stopped.code !== 0
    ? `server did not exit cleanly on SIGTERM (exit code ${stopped.code})\n${stderr}` +
      (stopped.threads === undefined
        ? ""
        : `\nits threads before SIGKILL (tid, name, state, wait):\n${stopped.threads}`)
    : stopped.seconds > stopLimitSeconds
      ? `server took ${stopped.seconds.toFixed(1)} s to stop on SIGTERM (more than ${stopLimitSeconds} s)\n${stderr}`
      : undefined

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100

/** A process and its descendants (a clustered server's workers are children of its primary). */
const processTree = (pid: number): Array<number> => {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    try {
      const children = readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, "utf8").trim()
      if (children !== "") pids.push(...children.split(" ").map(Number))
    } catch {
      // gone, or not a Linux with /proc/<pid>/task/<tid>/children
    }
  }
  return pids
}

/** utime and stime of one process, in seconds (fields 14 and 15 of /proc/<pid>/stat), NaN if it is gone. */
const processCpu = (pid: number): { readonly user: number; readonly system: number } => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name may contain spaces; the fields we want come after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks }
  } catch {
    return { user: Number.NaN, system: Number.NaN }
  }
}

/**
 * How often a process went to sleep waiting (its voluntary context switches),
 * NaN if it is gone. For the load client: each sleep is a wake-up the server's
 * reply pays for (BENCHMARKS.md, "Not instructions but cache lines").
 */
export const sleeps = (pid: number): number => {
  try {
    const match = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? Number.NaN : Number(match[1])
  } catch {
    return Number.NaN
  }
}

/** VmRSS of one process in MB, or 0 if it is gone. */
const processRssMb = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? 0 : Number(match[1]) / 1024
  } catch {
    return 0
  }
}

/** utime and stime of a process and its descendants, in seconds, NaN if it is gone. */
export const cpuSplit = (pid: number): { readonly user: number; readonly system: number } =>
  processTree(pid).reduce(
    (sum, one) => {
      const cpu = processCpu(one)
      return { user: sum.user + cpu.user, system: sum.system + cpu.system }
    },
    { user: 0, system: 0 }
  )

/** VmRSS of a process and its descendants in MB, or 0 if it is gone. */
export const rssMb = (pid: number): number => processTree(pid).reduce((sum, one) => sum + processRssMb(one), 0)

/** Busy CPU seconds of the whole machine, all cores (first line of /proc/stat, minus idle and iowait). */
export const machineBusySeconds = (): number => {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
    .split("\n", 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / clockTicks
}

/** What a server used over a measurement window. */
export interface Usage {
  /** Seconds of wall time. */
  readonly wall: number
  /** CPU seconds of the server (and its descendants). */
  readonly serverCpu: number
  /** The part of `serverCpu` in user space (the rest is the kernel's, on its behalf). */
  readonly serverUserCpu: number
  /** How often the client went to sleep waiting for the server (NaN without a client). */
  readonly clientSleeps: number
  /** Busy CPU seconds of the whole machine. */
  readonly machineCpu: number
  /** Peak VmRSS in MB, sampled every 200 ms. */
  readonly rssPeakMb: number
}

/** Starts sampling a server (and its client, when given) now; `end()` stops and says what it used since. */
export const sampleWindow = (pid: number, clientPid?: number): { readonly end: () => Usage } => {
  const cpuStart = cpuSplit(pid)
  const sleepsStart = clientPid === undefined ? Number.NaN : sleeps(clientPid)
  const machineStart = machineBusySeconds()
  const wallStart = performance.now()
  let rssPeakMb = rssMb(pid)
  const sampler = setInterval(() => {
    rssPeakMb = Math.max(rssPeakMb, rssMb(pid))
  }, 200)
  let usage: Usage | undefined
  return {
    end: () => {
      if (usage !== undefined) return usage
      clearInterval(sampler)
      const cpu = cpuSplit(pid)
      usage = {
        wall: (performance.now() - wallStart) / 1000,
        serverCpu: cpu.user + cpu.system - cpuStart.user - cpuStart.system,
        serverUserCpu: cpu.user - cpuStart.user,
        clientSleeps: clientPid === undefined ? Number.NaN : sleeps(clientPid) - sleepsStart,
        machineCpu: machineBusySeconds() - machineStart,
        rssPeakMb: Math.max(rssPeakMb, rssMb(pid))
      }
      return usage
    }
  }
}
