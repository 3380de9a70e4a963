import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { ManagerConfig, PoolError } from "../src/index.ts"

const invalid = (input: unknown) =>
  Effect.flip(ManagerConfig.make(input as ManagerConfig.Input)).pipe(
    Effect.tap((error) => Effect.sync(() => assert.instanceOf(error, PoolError.ConfigError)))
  )

describe("ManagerConfig", () => {
  it.effect("defaults follow the Go original and this library", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make()
      assert.deepStrictEqual(ManagerConfig.toJson(config), {
        debug: false,
        bufferSize: 5120,
        minWorkersCount: 0,
        maxWorkersCount: 0,
        clientsDeadline: 3000,
        idleWorkerTimeout: 2000,
        maxMessageBytes: 1048576,
        drainTimeout: 30000,
        admissionPolicy: "reject",
        queueSize: 100,
        queueTimeout: 1000,
        maxConnectionsPerAddress: 0,
        maxMessagesPerConnection: 0,
        messageSpanSampleRate: 0,
        framing: "go"
      })
    })
  )

  it.effect("0 for bufferSize or clientsDeadline means the default, as in the Go original", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make({ bufferSize: 0, clientsDeadline: 0 })
      assert.strictEqual(config.bufferSize, 5120)
      assert.isTrue(Duration.equals(config.clientsDeadline, Duration.seconds(3)))
    })
  )

  it.effect("durations accept every Duration input form", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make({
        clientsDeadline: "1500 millis",
        idleWorkerTimeout: 250,
        drainTimeout: Duration.minutes(1)
      })
      assert.strictEqual(Duration.toMillis(config.clientsDeadline), 1500)
      assert.strictEqual(Duration.toMillis(config.idleWorkerTimeout), 250)
      assert.strictEqual(Duration.toMillis(config.drainTimeout), 60000)
      const tuple = yield* ManagerConfig.make({ clientsDeadline: [2, 0], drainTimeout: { seconds: 5 } })
      assert.strictEqual(Duration.toMillis(tuple.clientsDeadline), 2000)
      assert.strictEqual(Duration.toMillis(tuple.drainTimeout), 5000)
    })
  )

  it.effect("fields present but undefined count as left out", () =>
    Effect.gen(function* () {
      const config = yield* ManagerConfig.make({ bufferSize: undefined, clientsDeadline: undefined, debug: undefined })
      assert.strictEqual(config.bufferSize, 5120)
    })
  )

  it.effect("fields left out keep the base config", () =>
    Effect.gen(function* () {
      const base = yield* ManagerConfig.make({ minWorkersCount: 2, maxWorkersCount: 8, debug: true })
      const next = yield* ManagerConfig.make({ maxWorkersCount: 4 }, base)
      assert.strictEqual(next.minWorkersCount, 2)
      assert.strictEqual(next.maxWorkersCount, 4)
      assert.isTrue(next.debug)
    })
  )

  it.effect("negative, NaN, fractional and text counts name the field and the value", () =>
    Effect.gen(function* () {
      assert.include((yield* invalid({ minWorkersCount: -1 })).message, "minWorkersCount = -1")
      assert.include((yield* invalid({ maxWorkersCount: Number.NaN })).message, "maxWorkersCount = NaN")
      assert.include((yield* invalid({ bufferSize: 1.5 })).message, "bufferSize = 1.5")
      assert.include((yield* invalid({ maxMessageBytes: 0 })).message, "maxMessageBytes = 0")
      assert.include((yield* invalid({ bufferSize: "big" })).message, 'bufferSize = "big"')
      assert.include((yield* invalid({ debug: "yes" })).message, 'debug = "yes"')
      assert.include((yield* invalid({ clientsDeadline: "soon" })).message, 'clientsDeadline = "soon"')
      assert.include((yield* invalid({ drainTimeout: -5 })).message, "drainTimeout = -5")
      assert.include((yield* invalid({ drainTimeout: Number.NaN })).message, "drainTimeout = NaN")
      assert.include((yield* invalid({ admissionPolicy: "wait" })).message, 'admissionPolicy = "wait"')
      assert.include(
        (yield* invalid({ messageSpanSampleRate: 1.5 })).message,
        "messageSpanSampleRate = 1.5: expected a number from 0 to 1"
      )
      assert.include((yield* invalid({ maxConnectionsPerAddress: -1 })).message, "maxConnectionsPerAddress = -1")
    })
  )

  it.effect("min above max fails, unless max is 0 (unlimited)", () =>
    Effect.gen(function* () {
      const error = yield* invalid({ minWorkersCount: 5, maxWorkersCount: 2 })
      assert.include(error.message, "minWorkersCount = 5")
      assert.include(error.message, "maxWorkersCount (2)")
      const unlimited = yield* ManagerConfig.make({ minWorkersCount: 5, maxWorkersCount: 0 })
      assert.strictEqual(unlimited.minWorkersCount, 5)
    })
  )

  it.effect("every invalid field is reported, and unknown fields are rejected", () =>
    Effect.gen(function* () {
      const error = yield* invalid({ minWorkersCount: -1, bufferSize: -2, maxWorkerCount: 3 })
      assert.deepStrictEqual(error.issues.map((issue) => issue.field).sort(), [
        "bufferSize",
        "maxWorkerCount",
        "minWorkersCount"
      ])
      assert.include((yield* invalid(null)).message, "config = null")
      assert.include((yield* invalid([1])).message, "expected an object")
    })
  )
})
