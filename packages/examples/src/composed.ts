/**
 * The pool as one layer among others in a larger Effect application.
 *
 * The callback greets each client by the name it sent and numbers the
 * requests: it needs a `Greeter`, which needs a `RequestCounter`. Neither is
 * passed to the pool by hand; `PoolManager.layer` simply requires `Greeter`
 * (its callback's requirement), and `Layer.provide` wires the graph:
 *
 *   Banner <- NodeTcpServer <- PoolManager <- Greeter <- RequestCounter
 *
 * `Layer.launch` builds the graph and keeps it running until interrupted;
 * releasing it closes the listener first, then drains the pool, then releases
 * the services the callback used.
 *
 * Usage: `node --conditions=@pool-manager/source src/composed.ts [port]` (or `PORT=...`; default 6263, 0 picks
 * a free port). Try `printf ada | nc 127.0.0.1 6263`.
 */
import { type PoolError, PoolManager } from "@pool-manager/core"
import { NodeCli, NodeTcpServer } from "@pool-manager/node"
import { Context, Effect, Layer, Ref } from "effect"

/**
 * Numbers the requests served, across all connections.
 *
 * @since 0.1.0
 */
export class RequestCounter extends Context.Service<RequestCounter, { readonly next: Effect.Effect<number> }>()(
  "@pool-manager/examples/RequestCounter"
) {
  static readonly layer = Layer.effect(
    RequestCounter,
    Effect.map(Ref.make(0), (count) => RequestCounter.of({ next: Ref.updateAndGet(count, (n) => n + 1) }))
  )
}

/**
 * Builds the reply to a client.
 *
 * @since 0.1.0
 */
export class Greeter extends Context.Service<Greeter, { greet(name: string): Effect.Effect<string> }>()(
  "@pool-manager/examples/Greeter"
) {
  static readonly layer = Layer.effect(
    Greeter,
    Effect.gen(function* () {
      const counter = yield* RequestCounter
      return Greeter.of({
        greet: (name) => Effect.map(counter.next, (n) => `Hello, ${name === "" ? "stranger" : name}! (request #${n})`)
      })
    })
  ).pipe(Layer.provide(RequestCounter.layer))
}

const decoder = new TextDecoder()

/**
 * The pool's callback: its `Greeter` requirement becomes the pool layer's.
 *
 * @since 0.1.0
 */
export const callback: PoolManager.Callback<PoolError.ConnectionError, Greeter> = (conn, body, len) =>
  Effect.gen(function* () {
    const greeter = yield* Greeter
    const reply = yield* greeter.greet(decoder.decode(body.subarray(0, len)).trim())
    // A write that fails because the client is gone closes the connection as
    // the client's close, without a warning: nothing to catch here.
    yield* conn.write(`${reply}\n`)
  })

/**
 * Logs where the server listens, once it does.
 *
 * @since 0.1.0
 */
export const Banner = Layer.effectDiscard(
  Effect.gen(function* () {
    const server = yield* NodeTcpServer.NodeTcpServer
    yield* Effect.log(`composed listening on ${String(server.address)}`)
  })
)

/**
 * The whole application as one layer, listening on `port`.
 *
 * @since 0.1.0
 */
export const App = (port: number) =>
  Banner.pipe(
    Layer.provide(NodeTcpServer.layer({ host: "127.0.0.1", port })),
    Layer.provide(PoolManager.layer({ minWorkersCount: 2, maxWorkersCount: 100 }, callback)),
    Layer.provide(Greeter.layer)
  )

if (import.meta.main) {
  // NodeCli.runMain: like NodeRuntime.runMain, but SIGINT/SIGTERM exit with 0.
  NodeCli.runMain(Layer.launch(App(Number(process.argv[2] ?? process.env.PORT ?? 6263))))
}
