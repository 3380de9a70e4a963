/**
 * A Redis server on the pool: enough of Redis (RESP2) for `redis-cli` and
 * `redis-benchmark` to talk to it, built only on the public API of
 * `@pool-manager/core` and `@pool-manager/node`.
 *
 * - Framing: `Framing.custom("resp", ...)` gives the callback one command per
 *   message, whatever the segments: arrays of bulk strings, and inline
 *   commands (a line of words, as typed in telnet). The decoder is
 *   incremental (a big value in many segments is waited for by its length)
 *   and keeps redis-server's limits (64 KB lines, 512 MB bulks, never more
 *   than `maxMessageBytes`). On a protocol error the client gets
 *   `-ERR Protocol error: ...` and the connection is closed, with a warning
 *   logged, as redis-server does.
 * - Commands: PING, ECHO, SET (EX, PX, NX, XX), GET, DEL, EXISTS, INCR, DECR,
 *   INCRBY, DECRBY, MGET, MSET, EXPIRE, TTL, PTTL, SELECT, DBSIZE, FLUSHDB,
 *   QUIT, CONFIG GET, COMMAND; strings only. Unknown commands and wrong
 *   arities get redis-server's error replies.
 * - State: 16 databases shared by all connections (`RedisStore`), with expiry
 *   on the layer's `Clock`, lazy (on access) and periodic (a sweep every 100
 *   ms); the database `SELECT` chose is per connection (`PoolManager.withState`).
 * - Both callback kinds share one function from a command to its reply: an
 *   Effect callback (the default) and, with `sync`, a `PoolManager.syncCallback`.
 *
 * Run it with `npm run example -- redis [--port 6379] [--host 127.0.0.1] [--sync]`
 * from the repository root, then `redis-cli -p 6379 SET greeting hello`.
 * `layer` starts the same server inside a larger program (tests, the benchmark).
 */
import { Buffer } from "node:buffer"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Framing, type ManagerConfig, type PoolError, PoolManager } from "@pool-manager/core"
import { NodeCli, NodeTcpServer } from "@pool-manager/node"
import { Clock, Context, Effect, Layer, Schedule } from "effect"
import { Command, Flag } from "effect/cli"
import * as Commands from "./internal/redisCommands.ts"
import * as Resp from "./internal/resp.ts"

/**
 * Where to listen and how to answer.
 *
 * @since 0.2.0
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one (default 6379, Redis's). */
  readonly port?: number | undefined
  /** Answer with a `PoolManager.syncCallback` instead of an Effect callback (default false). */
  readonly sync?: boolean | undefined
  /**
   * The pool's configuration, over this example's defaults: up to 10000
   * connections, a 5 minute idle deadline, 64 MB commands.
   */
  readonly config?: ManagerConfig.Input | undefined
}

/**
 * The keyspace: 16 databases shared by every connection. Its layer also runs
 * the periodic half of expiry.
 *
 * @since 0.2.0
 */
export class RedisStore extends Context.Service<RedisStore, Commands.Store>()("@pool-manager/examples/RedisStore") {
  /**
   * An empty store, with a sweep every 100 ms that deletes up to 200 expired
   * keys per database (reads delete expired keys too).
   */
  static readonly layer = Layer.effect(
    RedisStore,
    Effect.gen(function* () {
      const store = new Commands.Store()
      yield* Clock.currentTimeMillis.pipe(
        Effect.map((now) => store.sweep(now, 200)),
        Effect.repeat(Schedule.spaced("100 millis")),
        Effect.forkScoped
      )
      return store
    })
  )
}

const protocolErrorPrefix = "-ERR Protocol error: "

/**
 * RESP framing: each frame is one command, as a RESP array of bulk strings.
 * A protocol error becomes one last frame, the error reply itself (it starts
 * with `-`, which no command frame does), so the callback can send it before
 * closing; anything the client sends after it fails the decoder.
 *
 * @since 0.2.0
 */
export const framing = (options: Resp.DecoderOptions = {}): Framing.Framing =>
  Framing.custom("resp", () => {
    const decoder = new Resp.RespDecoder(options)
    let failed: string | undefined
    return {
      decode(buffered) {
        if (failed !== undefined) throw new Framing.FrameError({ message: `RESP protocol error: ${failed}` })
        const { frames, consumed, error } = decoder.decode(buffered)
        if (error === undefined) return { frames, consumed }
        failed = error
        frames.push(Buffer.from(`${protocolErrorPrefix}${error}\r\n`))
        return { frames, consumed: buffered.length }
      }
    }
  })

/**
 * A connection's state: the shared store, the clock expiry uses, the
 * connection's session (its database), and a way for the synchronous
 * callback, which runs outside any fiber, to log a warning.
 *
 * @since 0.2.0
 */
export interface State {
  readonly store: Commands.Store
  readonly clock: Clock.Clock
  readonly session: Commands.Session
  readonly warn: (message: string) => void
}

const init = (_conn: unknown) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    return {
      store: yield* RedisStore,
      clock: yield* Clock.Clock,
      session: Commands.session(),
      warn: (message: string) => Effect.runForkWith(context)(Effect.logWarning(message))
    } satisfies State
  })

/**
 * The reply to one frame, or `undefined` once the session is closing (after
 * `QUIT` or a protocol error, the rest of a pipeline is not run).
 *
 * @since 0.2.0
 */
export const respond = (state: State, frame: Uint8Array): Uint8Array | undefined => {
  if (state.session.closing) return undefined
  if (frame[0] === 45) {
    state.session.closing = true
    return frame
  }
  return Commands.execute(state.store, state.session, Resp.commandArgs(frame), state.clock.currentTimeMillisUnsafe())
}

/** The warning logged when a protocol error closes a connection; `undefined` for `QUIT`. */
const protocolWarning = (remoteAddress: string, reply: Uint8Array): string | undefined =>
  reply[0] === 45
    ? `${remoteAddress}: ${Buffer.from(reply).toString().slice(1).trim()}; closing the connection`
    : undefined

/**
 * The Effect callback: writes the reply, and closes after `QUIT` or a
 * protocol error. The write is returned as it is, so the pool performs it in
 * the socket's event without a fiber (BENCHMARKS.md, "Effects that complete at
 * once"); a write that fails because the client is gone closes the connection
 * as the client's close, without a warning.
 *
 * @since 0.2.0
 */
export const callback: PoolManager.Callback<PoolError.ConnectionError, never, State> = (conn, body, len, state) => {
  const reply = respond(state, body.subarray(0, len))
  if (reply === undefined) return Effect.void
  if (!state.session.closing) return conn.write(reply)
  const warning = protocolWarning(conn.remoteAddress, reply)
  return Effect.ignore(conn.write(reply)).pipe(
    Effect.andThen(warning === undefined ? Effect.void : Effect.logWarning(warning)),
    Effect.andThen(conn.close)
  )
}

/**
 * The synchronous callback: the same replies, written with
 * `conn.writeNow` in the event that delivered the command.
 *
 * @since 0.2.0
 */
export const syncCallback = PoolManager.syncCallback<State>((conn, body, len, state) => {
  const reply = respond(state, body.subarray(0, len))
  if (reply === undefined) return
  conn.writeNow(reply)
  if (state.session.closing) {
    const warning = protocolWarning(conn.remoteAddress, reply)
    if (warning !== undefined) state.warn(warning)
    conn.closeNow()
  }
})

/** Logs where the server listens (tests and scripts wait for this line). */
const Banner = Layer.effectDiscard(
  Effect.gen(function* () {
    const server = yield* NodeTcpServer.NodeTcpServer
    yield* Effect.log(`redis listening on ${String(server.address)}`)
  })
)

/**
 * The whole server as a layer: the store, the pool (RESP framing, one
 * session per connection) and the listener. It provides `NodeTcpServer`, whose
 * `address` has the port when 0 was asked for. `Layer.launch(layer({ port:
 * 6380, sync: true }))` serves until interrupted.
 *
 * @since 0.2.0
 */
export const layer = (options: Options = {}) => {
  const config = {
    maxWorkersCount: 10_000,
    clientsDeadline: "5 minutes",
    maxMessageBytes: 64 * 1024 * 1024,
    ...options.config
  } satisfies ManagerConfig.Input
  const maxBulkBytes = Math.min(Resp.maxBulkBytesDefault, Number(config.maxMessageBytes))
  const handler = options.sync === true ? syncCallback : callback
  return Banner.pipe(
    Layer.provideMerge(NodeTcpServer.layer({ host: options.host ?? "127.0.0.1", port: options.port ?? 6379 })),
    Layer.provide(
      PoolManager.layer({ ...config, framing: framing({ maxBulkBytes }) }, PoolManager.withState(init, handler))
    ),
    Layer.provide(RedisStore.layer)
  )
}

/**
 * The command line: `redis [--port N] [--host H] [--sync]`.
 *
 * @since 0.2.0
 */
export const command = Command.make(
  "redis",
  {
    port: Flag.Int("port").pipe(Flag.withDescription("TCP port, 0 for a free one"), Flag.withDefault(6379)),
    host: Flag.String("host").pipe(Flag.withDescription("interface to bind"), Flag.withDefault("127.0.0.1")),
    sync: Flag.Boolean("sync").pipe(
      Flag.withDescription("answer with a synchronous callback instead of an Effect one"),
      Flag.withDefault(false)
    )
  },
  (options) => Layer.launch(layer(options))
).pipe(Command.withDescription("A Redis (RESP2) server on the pool: strings, expiry, 16 databases."))

/**
 * Runs the server as the process's program, on `args` (the arguments after
 * the program's name). SIGINT and SIGTERM stop it gracefully with exit code 0.
 *
 * @since 0.2.0
 */
export const main = (args: ReadonlyArray<string>): void =>
  NodeCli.runMain(Command.runWith(command, { version: "0.2.0" })(args).pipe(Effect.provide(NodeServices.layer)))

if (import.meta.main) main(process.argv.slice(2))
