/**
 * Export to an OpenTelemetry collector over OTLP/HTTP, with Effect's own
 * exporters (`effect/observability`): traces, so the pool's spans
 * (`pool.connection`, `pool.put`, `pool.message`) and the callback's own go to
 * the collector, and the metrics of the `MetricRegistry`, the pool's
 * included. The bodies are OTLP JSON, posted with `fetch` to
 * `<endpoint>/v1/traces` and `<endpoint>/v1/metrics`.
 *
 * Each process is its own `service.instance.id` (host and pid), so the
 * metrics of the processes of `--processes N` stay apart.
 *
 * Spans and metrics are batched and posted every few seconds; when the layer
 * is released (at the end of a graceful stop) whatever is left is posted
 * before the program ends, within a few seconds. Logs stay on stdout: JSON
 * lines carry the `traceId` and `spanId` of the span they were written in
 * (`NodeLogging`).
 *
 * @since 0.1.0
 */
import * as Os from "node:os"
import type * as Duration from "effect/Duration"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as Layer from "effect/Layer"
import type * as OtlpExporter from "effect/observability/OtlpExporter"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"

/**
 * Options for `layer`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The collector's base URL, such as `http://127.0.0.1:4318`. */
  readonly endpoint: string
  /** The `service.name` resource attribute. */
  readonly serviceName: string
  /** The `service.version` resource attribute. */
  readonly serviceVersion?: string | undefined
  /** How often batches are posted (default 5 seconds). */
  readonly exportInterval?: Duration.Input | undefined
  /** How long the final post may take when the layer is released (default 3 seconds). */
  readonly shutdownTimeout?: Duration.Input | undefined
}

/**
 * Installs Effect's OTLP tracer (as `Tracer.Tracer`) and metrics exporter for
 * what it is provided to. A pool manager made under it traces its
 * connections: `PoolManager` decides when it is made, from the tracer it
 * finds.
 *
 * @example
 * ```ts
 * import { PoolManager } from "@pool-manager/core"
 * import { NodeOtlp } from "@pool-manager/node"
 * import { Effect, Layer } from "effect"
 *
 * // Every connection becomes a pool.connection span, with the callback's
 * // "app.handle" span under it; one message in ten gets a pool.message span.
 * const Pool = PoolManager.layer({ maxWorkersCount: 100, messageSpanSampleRate: 0.1 }, (conn) =>
 *   Effect.ignore(conn.write("OK")).pipe(Effect.withSpan("app.handle"))
 * )
 * const Traced = Pool.pipe(
 *   Layer.provide(NodeOtlp.layer({ endpoint: "http://127.0.0.1:4318", serviceName: "greeter" }))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<OtlpExporter.Flusher> => {
  const base = options.endpoint.replace(/\/+$/, "")
  const resource = {
    serviceName: options.serviceName,
    serviceVersion: options.serviceVersion,
    attributes: { "service.instance.id": `${Os.hostname()}/${process.pid}`, "process.pid": process.pid }
  }
  return Layer.mergeAll(
    OtlpTracer.layer({
      url: `${base}/v1/traces`,
      resource,
      exportInterval: options.exportInterval,
      shutdownTimeout: options.shutdownTimeout
    }),
    OtlpMetrics.layer({
      url: `${base}/v1/metrics`,
      resource,
      exportInterval: options.exportInterval,
      shutdownTimeout: options.shutdownTimeout
    })
  ).pipe(Layer.provide([OtlpSerialization.layerJson, FetchHttpClient.layer]))
}
