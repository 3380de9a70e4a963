/**
 * `@pool-manager/node`: binds `@pool-manager/core` to `node:net`.
 *
 * @since 0.1.0
 */

/**
 * An HAProxy agent-check endpoint reporting the pool's free capacity as a
 * weight, and `drain` while stopping.
 *
 * @since 0.1.0
 */
export * as NodeAgentCheck from "./NodeAgentCheck.ts"

/**
 * The standalone server as an `effect/cli` command, and its reusable pieces.
 *
 * @since 0.1.0
 */
export * as NodeCli from "./NodeCli.ts"

/**
 * The CLI's configuration half: its flags, their defaults, and how defaults, a
 * config file and flags make one configuration.
 *
 * @since 0.1.0
 */
export * as NodeCliConfig from "./NodeCliConfig.ts"

/**
 * Several server processes sharing one port with `node:cluster`, and their
 * metrics aggregated by the primary.
 *
 * @since 0.1.0
 */
export * as NodeCluster from "./NodeCluster.ts"

/**
 * A JSON config file of pool settings, and reloading it on SIGHUP.
 *
 * @since 0.1.0
 */
export * as NodeConfigFile from "./NodeConfigFile.ts"

/**
 * A `node:net` socket as a pool `Connection`.
 *
 * @since 0.1.0
 */
export * as NodeConnection from "./NodeConnection.ts"

/**
 * The server's log output: text or JSON, with a minimum level that follows
 * the pool's `debug` setting.
 *
 * @since 0.1.0
 */
export * as NodeLogging from "./NodeLogging.ts"

/**
 * An HTTP endpoint serving `/metrics` (Prometheus) and `/healthz`.
 *
 * @since 0.1.0
 */
export * as NodeMetricsServer from "./NodeMetricsServer.ts"

/**
 * Export of traces and metrics to an OpenTelemetry collector over OTLP/HTTP,
 * with Effect's own exporters.
 *
 * @since 0.1.0
 */
export * as NodeOtlp from "./NodeOtlp.ts"

/**
 * The PROXY protocol (v1 and v2): the header parser, and the gate that reads
 * it from connections sent by a trusted balancer.
 *
 * @since 0.1.0
 */
export * as NodeProxyProtocol from "./NodeProxyProtocol.ts"
/**
 * A live status page for operators, served with the metrics: charts of the
 * pool's workers, admissions, queue and closes, and its configuration.
 *
 * @since 0.1.0
 */
export * as NodeStatusPage from "./NodeStatusPage.ts"

/**
 * A TCP or unix socket server feeding a `PoolManager`.
 *
 * @since 0.1.0
 */
export * as NodeTcpServer from "./NodeTcpServer.ts"

/**
 * TLS as the server serves it: default cipher suites, client certificates
 * (mutual TLS), and the verified client certificate of a connection.
 *
 * @since 0.2.0
 */
export * as NodeTls from "./NodeTls.ts"
