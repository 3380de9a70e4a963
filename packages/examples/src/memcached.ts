/**
 * A memcached server on the pool: the ASCII protocol as memcached's own
 * `doc/protocol.txt` specifies it, served by `PoolManager` behind
 * `NodeTcpServer`, built only on the public API of `@pool-manager/core` and
 * `@pool-manager/node`. The real libmemcached tools (`memccp`, `memccat`,
 * `memcflush`, `memcstat`, `memcslap`) work against it.
 *
 * Commands: `set`, `add`, `replace`, `append`, `prepend`, `cas`, `get`,
 * `gets`, `gat`, `gats`, `delete`, `incr`, `decr`, `touch`, `flush_all`,
 * `version`, `verbosity`, `stats` (also `stats settings` and `stats reset`)
 * and `quit`, `noreply` on every command that takes it, and the error
 * replies `ERROR`, `CLIENT_ERROR ...` and `SERVER_ERROR ...`. Expiration
 * times follow the protocol (0 never, negative already expired, over 30 days
 * a unix time), time comes from Effect's `Clock`, cas uniques count up from 1,
 * and the cache evicts its least recently used items beyond `memoryLimit`.
 *
 * How it rides the pool:
 * - framing: `Framing.custom("memcached", ...)` cuts the byte stream into
 *   whole commands, a line plus its data block, whatever segments they came
 *   in (`internal/memcachedDecoder.ts`), one decoder per connection;
 * - one pure function answers a frame (`internal/memcachedCommands.ts`), used
 *   by both callback kinds: an Effect callback (the default) and, with
 *   `sync: true` / `--sync`, a `PoolManager.syncCallback` writing with
 *   `conn.writeNow`;
 * - per-connection state (`PoolManager.withState`) keeps the
 *   `curr_connections` and `total_connections` statistics: its scope's
 *   finalizer counts the connection out when it ends;
 * - a client beyond `maxConnections` gets memcached's
 *   `ERROR Too many open connections` and is closed.
 *
 * Run it with `npm run example -- memcached [--port N] [--host H] [--sync]`
 * (default 127.0.0.1:11211; `--port 0` picks a free port, printed in the
 * `listening on` line), then e.g. `memccp --servers=127.0.0.1:11211 file`.
 * Importing this module does not start a server: `layer` does.
 */

import * as NodeServices from "@effect/platform-node/NodeServices"
import { Framing, type PoolError, PoolManager } from "@pool-manager/core"
import { NodeCli, NodeTcpServer } from "@pool-manager/node"
import { Clock, Duration, Effect, Layer } from "effect"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { Close, makeHandler, type Outcome } from "./internal/memcachedCommands.ts"
import { makeDecoder } from "./internal/memcachedDecoder.ts"
import { Store } from "./internal/memcachedStore.ts"

/**
 * Options of the server; every one has a default (see `defaults`).
 *
 * @since 0.2.0
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one (default 11211, memcached's). */
  readonly port?: number | undefined
  /** Answer with a `PoolManager.syncCallback` instead of an Effect callback (default false). */
  readonly sync?: boolean | undefined
  /** Bytes the items may take before the least recently used are evicted (memcached's `-m`; default 64 MiB). */
  readonly memoryLimit?: number | undefined
  /** The largest value accepted (memcached's `-I`; default 1 MiB). */
  readonly maxItemSize?: number | undefined
  /** Most connections served at once (memcached's `-c`; default 1024). */
  readonly maxConnections?: number | undefined
  /** How long a connection may stay silent, or a reply make no progress, before it is closed (default 5 minutes). */
  readonly idleTimeout?: Duration.Input | undefined
  /** What `version` and `stats` report (default `1.6.0-pool-manager`). */
  readonly version?: string | undefined
}

/**
 * The defaults of `Options`.
 *
 * @since 0.2.0
 */
export const defaults = {
  host: "127.0.0.1",
  port: 11211,
  sync: false,
  memoryLimit: 64 * 1024 * 1024,
  maxItemSize: 1024 * 1024,
  maxConnections: 1024,
  idleTimeout: Duration.minutes(5),
  // A memcached-like version number first: clients parse it (libmemcached reads major.minor.micro).
  version: "1.6.0-pool-manager"
} as const

/** The longest command line other than a retrieval's (memcached's limit). */
const maxLineLength = 2048

/**
 * The memcached framing: whole commands, each a line plus its data block.
 *
 * @since 0.2.0
 */
export const framing = (maxItemSize: number = defaults.maxItemSize): Framing.Framing =>
  Framing.custom("memcached", () => makeDecoder({ maxItemSize, maxLineLength }))

// Counts the connection in `curr_connections` while it lives.
const connectionState = (store: Store) => () =>
  Effect.acquireRelease(
    Effect.sync(() => {
      store.connections++
      store.counters.total_connections++
    }),
    () =>
      Effect.sync(() => {
        store.connections--
      })
  )

const effectCallback =
  (handle: (frame: Uint8Array) => Outcome): PoolManager.Callback<PoolError.ConnectionError, never, void> =>
  (conn, body, len) => {
    const outcome = handle(len === body.length ? body : body.subarray(0, len))
    if (outcome === undefined) return Effect.void
    if (outcome instanceof Close) {
      return outcome.reply === undefined
        ? conn.close
        : Effect.andThen(Effect.ignore(conn.write(outcome.reply)), conn.close)
    }
    // Returned as it is, the write is performed in the socket's event without a
    // fiber; one that fails because the client is gone closes as its close.
    return conn.write(outcome)
  }

const syncCallback = (handle: (frame: Uint8Array) => Outcome): PoolManager.SyncCallback<void> =>
  PoolManager.syncCallback((conn, body, len) => {
    const outcome = handle(len === body.length ? body : body.subarray(0, len))
    if (outcome === undefined) return
    if (outcome instanceof Close) {
      if (outcome.reply !== undefined) conn.writeNow(outcome.reply)
      conn.closeNow()
      return
    }
    conn.writeNow(outcome)
  })

/**
 * The server as a layer: a cache, a pool answering the memcached protocol
 * from it, and a listener on `host:port` (its `NodeTcpServer` service gives
 * the bound address). Releasing the layer stops listening, then drains.
 *
 * @example
 * ```ts
 * import { NodeTcpServer } from "@pool-manager/node"
 * import { Effect } from "effect"
 * import { layer } from "./memcached.ts"
 *
 * const program = Effect.gen(function* () {
 *   const server = yield* NodeTcpServer.NodeTcpServer
 *   yield* Effect.log(`memcached on ${String(server.address)}`)
 * }).pipe(Effect.provide(layer({ port: 0, sync: true })))
 * ```
 *
 * @since 0.2.0
 */
export const layer = (options: Options = {}) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const maxItemSize = options.maxItemSize ?? defaults.maxItemSize
      const clock = yield* Clock.clockWith(Effect.succeed)
      const store = new Store({
        now: () => clock.currentTimeMillisUnsafe(),
        memoryLimit: Math.max(options.memoryLimit ?? defaults.memoryLimit, maxItemSize)
      })
      const handle = makeHandler(store, {
        maxItemSize,
        version: options.version ?? defaults.version,
        pid: process.pid
      })
      const callback = PoolManager.withState(connectionState(store))(
        options.sync === true ? syncCallback(handle) : effectCallback(handle)
      )
      const pool = PoolManager.layer(
        {
          framing: framing(maxItemSize),
          maxWorkersCount: options.maxConnections ?? defaults.maxConnections,
          clientsDeadline: options.idleTimeout ?? defaults.idleTimeout,
          // A frame is at most a line (and its \r\n) and a whole item (and its \r\n), or a retrieval's long key list.
          maxMessageBytes: maxItemSize + maxLineLength + 4
        },
        callback
      )
      return NodeTcpServer.layer({
        host: options.host ?? defaults.host,
        port: options.port ?? defaults.port,
        busyReply: "ERROR Too many open connections\r\n"
      }).pipe(Layer.provide(pool))
    })
  )

/**
 * The command line: `memcached [--port N] [--host H] [--sync] [--memory-limit MB] [--max-item-size BYTES]
 * [--max-connections N]`.
 *
 * @since 0.2.0
 */
export const command = Command.make(
  "memcached",
  {
    host: Flag.String("host").pipe(Flag.withDefault(defaults.host), Flag.withDescription("Interface to bind.")),
    port: Flag.Int("port").pipe(Flag.withDefault(defaults.port), Flag.withDescription("TCP port; 0 picks a free one.")),
    sync: Flag.Boolean("sync").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Answer with a synchronous callback instead of an Effect callback.")
    ),
    memoryLimit: Flag.Int("memory-limit").pipe(
      Flag.withDefault(defaults.memoryLimit / 1024 / 1024),
      Flag.withDescription("Megabytes of items kept before the least recently used are evicted (memcached's -m).")
    ),
    maxItemSize: Flag.Int("max-item-size").pipe(
      Flag.withDefault(defaults.maxItemSize),
      Flag.withDescription("The largest value accepted, in bytes (memcached's -I).")
    ),
    maxConnections: Flag.Int("max-connections").pipe(
      Flag.withDefault(defaults.maxConnections),
      Flag.withDescription("Most connections served at once (memcached's -c).")
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const server = yield* NodeTcpServer.NodeTcpServer
      yield* Effect.log(
        `memcached listening on ${String(server.address)} callback=${flags.sync ? "sync" : "effect"} ` +
          `memory-limit=${flags.memoryLimit}MB max-item-size=${flags.maxItemSize} max-connections=${flags.maxConnections}`
      )
      return yield* Effect.never
    }).pipe(Effect.provide(layer({ ...flags, memoryLimit: flags.memoryLimit * 1024 * 1024 })))
).pipe(Command.withDescription("A memcached server (ASCII protocol) on the pool."))

/**
 * Runs the server as the process's program, on `args` (the arguments after
 * the program's name). SIGINT and SIGTERM stop it gracefully with exit code 0.
 *
 * @since 0.2.0
 */
export const main = (args: ReadonlyArray<string>): void =>
  NodeCli.runMain(Command.runWith(command, { version: "0.2.0" })(args).pipe(Effect.provide(NodeServices.layer)))

if (import.meta.main) main(process.argv.slice(2))
