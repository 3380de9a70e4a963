/**
 * How the bench's plain `node:net` servers (raw, floor, raw-redis,
 * raw-memcached) listen and stop, as the harness expects of every server:
 * `listening <port>` on stdout once bound to 127.0.0.1, and on SIGTERM an
 * exit at once (with `accepted <n>` on stderr first, when counted).
 */
import { writeSync } from "node:fs"
import type * as Net from "node:net"

/** Listens on 127.0.0.1:`port` (0: any) and exits on SIGTERM; `accepted` reads the count to report. */
export const listenOnLoopback = (server: Net.Server, port: number, accepted?: () => number): void => {
  server.listen({ host: "127.0.0.1", port, backlog: 4096 }, () => {
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("unexpected server address")
    process.stdout.write(`listening ${address.port}\n`)
  })
  // Written synchronously, then exit: once in CI a server printed `accepted`
  // and was still up 30 s later when it waited for the write's callback.
  process.on("SIGTERM", () => {
    server.close()
    if (accepted !== undefined) writeSync(2, `accepted ${accepted()}\n`)
    process.exit(0)
  })
}
