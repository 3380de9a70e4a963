/**
 * An HAProxy agent-check endpoint: HAProxy (`agent-check agent-port N` on a
 * `server` line) connects every `agent-inter`, reads one line and adjusts the
 * server. The line reports the pool's free capacity as a weight, so a
 * balancer sends new clients to the backend with free workers instead of
 * getting `ERROR_SERVER_BUSY` from a full one while another idles:
 *
 * - `up ready 40%`: serving, with 40% of `maxWorkersCount` free (`ready` also
 *   lifts a `drain` HAProxy remembers from before a restart); at least 1% so
 *   that when every backend is full a client still reaches one and is told
 *   it is busy, instead of being dropped by the balancer;
 * - `up ready 100%`: serving without a worker limit (`maxWorkersCount` 0);
 * - `drain`: stopping (the lame-duck period and the drain): no new clients.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import { listen } from "./internal/listen.ts"
import { ListenError } from "./NodeTcpServer.ts"

/**
 * What the agent reports.
 *
 * @category models
 * @since 0.1.0
 */
export interface State {
  /** True while stopping: the agent answers `drain`. */
  readonly draining: boolean
  /** Connections being served. */
  readonly busy: number
  /** `maxWorkersCount` (0 = unlimited). */
  readonly max: number
}

/**
 * Options for `make` and `layer`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1). */
  readonly host?: string | undefined
  /** TCP port; 0 picks a free one. */
  readonly port: number
  /** The state to report, read per check. */
  readonly state: Effect.Effect<State>
}

/**
 * The listening agent endpoint.
 *
 * @category services
 * @since 0.1.0
 */
export class NodeAgentCheck extends Context.Service<
  NodeAgentCheck,
  {
    /** The address the endpoint is bound to (with the real port when 0 was asked for). */
    readonly address: NetAddress.SocketAddress
  }
>()("@pool-manager/node/NodeAgentCheck") {}

/**
 * The line HAProxy reads for `state`, newline included.
 *
 * @example
 * ```ts
 * import { NodeAgentCheck } from "@pool-manager/node"
 *
 * NodeAgentCheck.reply({ draining: false, busy: 6, max: 10 }) // "up ready 40%\n"
 * NodeAgentCheck.reply({ draining: true, busy: 6, max: 10 }) // "drain\n"
 * ```
 *
 * @category formatting
 * @since 0.1.0
 */
export const reply = (state: State): string => {
  if (state.draining) return "drain\n"
  if (state.max <= 0) return "up ready 100%\n"
  const free = Math.floor((100 * Math.max(0, state.max - state.busy)) / state.max)
  return `up ready ${Math.max(1, free)}%\n`
}

/**
 * Listens on `host:port` and answers each connection with `reply(state)`,
 * then closes it (whatever HAProxy's `agent-send` sent is ignored). Closing
 * the scope closes the listener.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<NodeAgentCheck["Service"], ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const context = yield* Effect.context<never>()
    const onConnection = (socket: Net.Socket) => {
      socket.on("error", () => socket.destroy())
      // Without this a peer that never reads would hold the socket open.
      socket.setTimeout(5000, () => socket.destroy())
      socket.resume()
      const state = Effect.runSyncWith(context)(options.state)
      socket.end(reply(state))
    }
    const server = yield* listen(Net.createServer(onConnection), { host, port: options.port }).pipe(
      Effect.mapError((cause) => new ListenError({ address: `${host}:${options.port}`, cause }))
    )
    const address = server.address() as Net.AddressInfo
    return NodeAgentCheck.of({ address: NetAddress.inetAddressFromIpStringUnsafe(address.address, address.port) })
  })

/**
 * `make` as a layer.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<NodeAgentCheck, ListenError> =>
  Layer.effect(NodeAgentCheck, make(options))
