/**
 * `--otlp-endpoint`: the command exports its spans and metrics to an OTLP/HTTP receiver
 * this test runs on loopback, which decodes the JSON bodies. A client's
 * connection, its messages and the callback's own span arrive as one tree,
 * with the pool's attributes, flushed by the graceful stop; the JSON log line
 * the callback wrote carries the ids of its span. And the layer itself, in
 * this process: the endpoint it posts to, the resource it names, what is left
 * posted when it is released, and the counters by reason as monotonic sums.
 * And the command in this process: without `--service-name`, its name is the
 * service's.
 */

import * as Http from "node:http"
import * as Os from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric } from "effect"
import { NodeOtlp, NodeProxyProtocol } from "../src/index.ts"
import { connect } from "./utils/client.ts"
import { spawnNode, tracedServer } from "./utils/cliProcess.ts"
import { startCommand } from "./utils/command.ts"

interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: number | string
  readonly doubleValue?: number
  readonly boolValue?: boolean
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}
interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<KeyValue>
}
interface TraceData {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}

interface MetricsData {
  readonly resourceMetrics: ReadonlyArray<{
    readonly scopeMetrics: ReadonlyArray<{
      readonly metrics: ReadonlyArray<{
        readonly name: string
        readonly sum?: {
          readonly isMonotonic?: boolean
          readonly dataPoints: ReadonlyArray<{
            asInt?: number | string
            asDouble?: number
            attributes?: ReadonlyArray<KeyValue>
          }>
        }
      }>
    }>
  }>
}

const anyValue = (value: AnyValue): unknown =>
  value.stringValue ?? value.boolValue ?? (value.intValue === undefined ? value.doubleValue : Number(value.intValue))

const attributes = (list: ReadonlyArray<KeyValue>): Record<string, unknown> =>
  Object.fromEntries(list.map(({ key, value }) => [key, anyValue(value)]))

/** An OTLP/HTTP receiver on 127.0.0.1: every JSON body posted, by path. */
const receiver = Effect.acquireRelease(
  Effect.callback<{
    readonly url: string
    readonly posted: Map<string, Array<unknown>>
    readonly server: Http.Server
  }>((resume) => {
    const posted = new Map<string, Array<unknown>>()
    const server = Http.createServer((request, response) => {
      let body = ""
      request.setEncoding("utf8")
      request.on("data", (chunk) => {
        body += chunk
      })
      request.on("end", () => {
        const list = posted.get(request.url ?? "") ?? []
        list.push(JSON.parse(body))
        posted.set(request.url ?? "", list)
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number }
      resume(Effect.succeed({ url: `http://127.0.0.1:${address.port}`, posted, server }))
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

describe("NodeOtlp", () => {
  it.live("the layer posts what is left when released, to the endpoint's paths, under the resource it names", () =>
    Effect.gen(function* () {
      const otlp = yield* receiver
      const counter = Metric.counter("otlp_layer_test_total")
      yield* Effect.gen(function* () {
        yield* Effect.void.pipe(Effect.withSpan("otlp.test"))
        yield* Metric.update(counter, 3)
      }).pipe(
        Effect.provide(
          NodeOtlp.layer({
            // Trailing slashes are dropped: the paths are not doubled.
            endpoint: `${otlp.url}//`,
            serviceName: "in-process",
            serviceVersion: "1.2.3",
            // Nothing is posted on the interval here: what arrives, the release sent.
            exportInterval: "1 hour",
            shutdownTimeout: "2 seconds"
          })
        ),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
      assert.sameMembers([...otlp.posted.keys()], ["/v1/traces", "/v1/metrics"])

      const traces = otlp.posted.get("/v1/traces") as Array<TraceData>
      const resources = traces.flatMap((batch) => batch.resourceSpans)
      assert.isAbove(resources.length, 0)
      for (const resource of resources) {
        assert.include(attributes(resource.resource.attributes), {
          "service.name": "in-process",
          "service.version": "1.2.3",
          "service.instance.id": `${Os.hostname()}/${process.pid}`,
          "process.pid": process.pid
        })
      }
      const spans = resources.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans))
      assert.deepStrictEqual(
        spans.map((span) => span.name),
        ["otlp.test"]
      )

      const reports = otlp.posted.get("/v1/metrics") as Array<MetricsData>
      const points = reports.flatMap((report) =>
        report.resourceMetrics.flatMap((resource) =>
          resource.scopeMetrics.flatMap((scope) =>
            scope.metrics
              .filter((metric) => metric.name === "otlp_layer_test_total")
              .flatMap((metric) => metric.sum!.dataPoints)
          )
        )
      )
      assert.deepStrictEqual(
        points.map((point) => Number(point.asInt ?? point.asDouble)),
        [3]
      )
    }).pipe(Effect.scoped)
  )

  it.live("a counter by reason (here the PROXY gate's) is exported as a monotonic sum, a point per reason", () =>
    Effect.gen(function* () {
      const otlp = yield* receiver
      yield* NodeProxyProtocol.makeGate().pipe(
        Effect.provide(
          NodeOtlp.layer({
            endpoint: otlp.url,
            serviceName: "in-process",
            exportInterval: "1 hour",
            shutdownTimeout: "2 seconds"
          })
        ),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
      const sums = (otlp.posted.get("/v1/metrics") as Array<MetricsData>).flatMap((report) =>
        report.resourceMetrics.flatMap((resource) =>
          resource.scopeMetrics.flatMap((scope) =>
            scope.metrics.filter((metric) => metric.name === "pool_proxy_connections_rejected_total")
          )
        )
      )
      assert.isAbove(sums.length, 0)
      for (const metric of sums) assert.strictEqual(metric.sum?.isMonotonic, true)
      const reasons = sums.flatMap((metric) =>
        metric.sum!.dataPoints.map((point) => attributes(point.attributes ?? []).reason)
      )
      assert.includeMembers(reasons, ["untrusted", "missing", "timeout"])
    }).pipe(Effect.scoped)
  )

  it.live("the command in this process exports, on its stop, under its own name without --service-name", () =>
    Effect.gen(function* () {
      const otlp = yield* receiver
      const server = yield* startCommand(["--host", "127.0.0.1", "--port", "0", "--otlp-endpoint", otlp.url], {
        name: "otlp-named"
      })
      yield* Effect.gen(function* () {
        const client = yield* connect(server.port)
        yield* client.send("HI!")
        assert.strictEqual(yield* client.receive(2), "OK")
      }).pipe(Effect.scoped)
      yield* Fiber.interrupt(server.fiber)
      const reports = (otlp.posted.get("/v1/metrics") ?? []) as Array<{
        readonly resourceMetrics: ReadonlyArray<{ readonly resource: { readonly attributes: ReadonlyArray<KeyValue> } }>
      }>
      const resources = reports.flatMap((report) => report.resourceMetrics)
      assert.isAbove(resources.length, 0, "no metrics were posted")
      for (const resource of resources) {
        assert.strictEqual(attributes(resource.resource.attributes)["service.name"], "otlp-named")
      }
    }).pipe(Effect.scoped)
  )

  it.live(
    "--otlp-endpoint exports connection → message → the callback's span, with the pool's attributes, on shutdown",
    () =>
      Effect.gen(function* () {
        const otlp = yield* receiver
        const child = yield* spawnNode([
          tracedServer,
          ...["--port", "0", "--otlp-endpoint", otlp.url, "--service-name", "otlp-test"],
          ...["--message-span-sample-rate", "1", "--log-format", "json"]
        ])
        const port = Number((yield* child.waitFor(/listening on 127\.0\.0\.1:(\d+)"/))[1])
        yield* Effect.gen(function* () {
          const client = yield* connect(port)
          yield* client.send("HI!")
          assert.strictEqual(yield* client.receive(2), "OK")
          yield* client.send("HELLO")
          assert.strictEqual(yield* client.receive(4), "OKOK")
        }).pipe(Effect.scoped)
        yield* child.waitFor(/"handling"[\s\S]*"handling"/)
        // Spans are posted every 5 seconds; these are sent by the graceful stop.
        child.process.kill("SIGTERM")
        assert.strictEqual(yield* child.exit(), 0)

        const batches = (otlp.posted.get("/v1/traces") ?? []) as Array<TraceData>
        assert.isAbove(batches.length, 0, "no traces were posted")
        const resources = batches.flatMap((batch) => batch.resourceSpans)
        for (const resource of resources) {
          const described = attributes(resource.resource.attributes)
          assert.strictEqual(described["service.name"], "otlp-test")
          assert.strictEqual(described["process.pid"], child.process.pid)
          assert.match(String(described["service.instance.id"]), new RegExp(`/${child.process.pid}$`))
        }
        const spans = resources.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans))
        const named = (name: string) => spans.filter((span) => span.name === name)

        const connections = named("pool.connection")
        assert.strictEqual(connections.length, 1)
        const connection = connections[0]!
        assert.isUndefined(connection.parentSpanId)
        assert.strictEqual(connection.kind, 2) // SERVER
        const connectionAttributes = attributes(connection.attributes)
        assert.match(String(connectionAttributes["pool.remote_address"]), /^127\.0\.0\.1:\d+$/)
        assert.include(connectionAttributes, {
          "pool.worker_id": 1,
          "pool.messages": 2,
          "pool.bytes_read": 8,
          "pool.bytes_written": 4,
          "pool.close_reason": "peer closed"
        })

        const messages = named("pool.message")
        assert.strictEqual(messages.length, 2)
        const handled = named("app.handle")
        assert.strictEqual(handled.length, 2)
        for (const message of messages) {
          assert.strictEqual(message.parentSpanId, connection.spanId)
          assert.strictEqual(message.traceId, connection.traceId)
        }
        assert.sameMembers(
          messages.map((message) => attributes(message.attributes)["pool.message.bytes"]),
          [3, 5]
        )
        assert.sameMembers(
          handled.map((span) => span.parentSpanId),
          messages.map((message) => message.spanId)
        )
        for (const span of handled) {
          assert.strictEqual(span.traceId, connection.traceId)
          assert.strictEqual(attributes(span.attributes)["app.route"], "ok")
        }

        // The metrics went along: the last report (cumulative) has both messages.
        const reports = (otlp.posted.get("/v1/metrics") ?? []) as Array<MetricsData>
        const metrics = reports.flatMap((report) =>
          report.resourceMetrics.flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
        )
        const counted = metrics.filter((metric) => metric.name === "pool_messages_total")
        assert.isAbove(counted.length, 0, "no pool metrics were posted")
        const last = counted.at(-1)!.sum!.dataPoints[0]!
        assert.strictEqual(Number(last.asInt ?? last.asDouble), 2)
        assert.isTrue(metrics.some((metric) => metric.name === "pool_queue_wait_seconds"))

        // The callback's log lines name its span.
        const logged = child
          .stdout()
          .split("\n")
          .filter((line) => line.includes('"handling"'))
          .map((line) => JSON.parse(line) as { traceId?: string; spanId?: string })
        assert.strictEqual(logged.length, 2)
        assert.sameMembers(
          logged.map((line) => `${line.traceId} ${line.spanId}`),
          handled.map((span) => `${span.traceId} ${span.spanId}`)
        )
      }).pipe(Effect.scoped),
    60_000
  )
})
