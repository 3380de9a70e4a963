/**
 * The errors of `@pool-manager/node`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The server could not listen: the address is in use, not permitted, or
 * invalid. `address` is what was asked for; `cause` is Node's error.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeTcpServer } from "@pool-manager/node"
 * import { Effect, Layer } from "effect"
 *
 * const Pool = PoolManager.layer({}, (conn) => Effect.ignore(conn.write("OK")))
 *
 * // Port taken: say so and fall back to any free port.
 * const Server = NodeTcpServer.layer({ port: 6263 }).pipe(
 *   Layer.catchTag("ListenError", (error) =>
 *     Layer.unwrap(Effect.as(Effect.logWarning(error.message), NodeTcpServer.layer({ port: 0 })))
 *   ),
 *   Layer.provide(Pool)
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  address: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    const hint =
      code === "EADDRINUSE"
        ? ": the address is in use (pick another port, or 0 for any free one)"
        : code === "EACCES"
          ? ": permission denied (ports below 1024 need privileges)"
          : ""
    return `cannot listen on ${this.address}${hint} (${String(this.cause)})`
  }
}
