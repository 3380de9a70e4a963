/**
 * `@pool-manager/node`: binds `@pool-manager/core` to `node:net`.
 *
 * @since 0.1.0
 */

/**
 * The standalone server as an `effect/cli` command, and its reusable pieces.
 *
 * @since 0.1.0
 */
export * as NodeCli from "./NodeCli.ts"

/**
 * A `node:net` socket as a pool `Connection`.
 *
 * @since 0.1.0
 */
export * as NodeConnection from "./NodeConnection.ts"

/**
 * The errors of this package.
 *
 * @since 0.1.0
 */
export * as NodeError from "./NodeError.ts"

/**
 * A TCP or unix socket server feeding a `PoolManager`.
 *
 * @since 0.1.0
 */
export * as NodeTcpServer from "./NodeTcpServer.ts"
