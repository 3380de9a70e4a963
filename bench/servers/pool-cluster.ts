/**
 * The pool server of `pool.ts` in two processes sharing the port with
 * `node:cluster` (what `pool-manager --processes 2` does). The primary forks
 * two workers and prints `listening <port>` once both listen; SIGTERM to the
 * primary stops both. On a 2-core machine the load client competes with the
 * two workers for the cores, so this row shows contention as much as scaling.
 */
import cluster from "node:cluster"

const processes = 2

if (cluster.isPrimary) {
  let listening = 0
  cluster.on("listening", (_worker, address) => {
    if (++listening === processes) process.stdout.write(`listening ${address.port}\n`)
  })
  for (let i = 0; i < processes; i++) cluster.fork()
  process.on("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM")
    cluster.on("exit", () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
    })
  })
} else {
  // Each worker runs the single-process server; cluster shares its port-0 listener.
  process.stdout.write = () => true
  await import("./pool.ts")
}
