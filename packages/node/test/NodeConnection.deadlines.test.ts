/**
 * The heap of read deadlines that every socket transport shares
 * (`internal/deadlines.ts`): items are checked in the order of their times,
 * each once its time has come, a later schedule never delays an earlier one,
 * a cancelled item is never checked, and the one timer is armed for the
 * earliest item only while there is one. Driven with a test clock and `run`,
 * on its real timer, and with socket transports: in the heap only while a
 * wait of theirs has a deadline to check.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Connection } from "@pool-manager/core"
import { Effect } from "effect"
import { NodeConnection } from "../src/index.ts"
import { type Deadline, Deadlines, deadlines as shared } from "../src/internal/deadlines.ts"
import { socketPair, until } from "./utils/socketPair.ts"

/** An item that records when it was checked, and can ask to be checked again. */
class Item implements Deadline {
  deadlineIndex = -1
  deadlineAt = Infinity
  readonly checks: Array<number> = []
  again: number | undefined = undefined
  readonly name: string
  readonly heap: Deadlines
  readonly order: Array<string>
  constructor(name: string, heap: Deadlines, order: Array<string>) {
    this.name = name
    this.heap = heap
    this.order = order
  }
  checkDeadline(now: number): void {
    this.checks.push(now)
    this.order.push(this.name)
    const again = this.again
    this.again = undefined
    if (again !== undefined) this.heap.schedule(this, again)
  }
}

/** A timer of the test clock: never fires by itself; a test calls `fire`. */
interface Timer {
  readonly fire: () => void
  readonly millis: number
  cleared: boolean
}

const setup = () => {
  const timers: Array<Timer> = []
  const clock = {
    time: 1000,
    now: () => clock.time,
    setTimer: (fire: () => void, millis: number): Timer => {
      const timer = { fire, millis, cleared: false }
      timers.push(timer)
      return timer
    },
    clearTimer: (timer: unknown) => {
      ;(timer as Timer).cleared = true
    }
  }
  const heap = new Deadlines(clock)
  const order: Array<string> = []
  const item = (name: string) => new Item(name, heap, order)
  // Each timer armed so far, as its delay and whether it was cleared.
  const timerStates = () => timers.map(({ millis, cleared }) => [millis, cleared])
  return { clock, heap, order, item, timers, timerStates }
}

// Every parent due no later than its children, and every item knowing its place.
const assertHeap = (heap: Deadlines) => {
  heap.heap.forEach((item, index) => {
    assert.strictEqual(item.deadlineIndex, index)
    if (index > 0) assert.isAtMost(heap.heap[(index - 1) >> 1]!.deadlineAt, item.deadlineAt)
  })
}

describe("NodeConnection deadlines", () => {
  it("checks items in the order of their times, each once its time has come", () => {
    const { heap, order, item } = setup()
    const times = [1700, 1100, 1900, 1300, 1500, 1200, 1800, 1400, 1600, 1000]
    const items = times.map((at) => item(String(at)))
    items.forEach((it, i) => {
      heap.schedule(it, times[i]!)
      assertHeap(heap)
    })
    heap.run(1450)
    assert.deepStrictEqual(order, ["1000", "1100", "1200", "1300", "1400"])
    assertHeap(heap)
    assert.strictEqual(heap.heap.length, 5)
    heap.run(1449)
    assert.strictEqual(order.length, 5, "nothing more is due")
    heap.run(2000)
    assert.deepStrictEqual(order.slice(5), ["1500", "1600", "1700", "1800", "1900"])
    for (const it of items) {
      assert.strictEqual(it.checks.length, 1)
      assert.strictEqual(it.deadlineIndex, -1)
      assert.strictEqual(it.deadlineAt, Infinity)
    }
    assert.isUndefined(heap.timer, "an empty heap keeps no timer")
    assert.strictEqual(heap.timerAt, Infinity)
  })

  it("a later schedule of an item already in the heap changes nothing; an earlier one moves it up", () => {
    const { heap, order, item } = setup()
    const a = item("a")
    const b = item("b")
    const c = item("c")
    heap.schedule(a, 1100)
    heap.schedule(b, 1200)
    heap.schedule(c, 1300)
    heap.schedule(a, 1500)
    assert.strictEqual(a.deadlineAt, 1100)
    heap.schedule(c, 1050)
    assertHeap(heap)
    assert.strictEqual(heap.heap[0], c)
    heap.run(1150)
    assert.deepStrictEqual(order, ["c", "a"])
  })

  it("a schedule for never (Infinity, NaN) neither adds an item nor arms a timer, nor moves one in the heap", () => {
    const { heap, item, timers } = setup()
    const a = item("a")
    heap.schedule(a, Infinity)
    heap.schedule(a, Number.NaN)
    assert.strictEqual(a.deadlineIndex, -1)
    assert.strictEqual(heap.heap.length, 0)
    assert.strictEqual(timers.length, 0)
    // Otherwise `run` would arm the timer for it, and Node fires an infinite delay after 1 ms, again and again.
    heap.run(5000)
    assert.strictEqual(timers.length, 0)
    heap.schedule(a, 1200)
    heap.schedule(a, Infinity)
    assert.strictEqual(a.deadlineAt, 1200)
    assert.deepStrictEqual(heap.heap, [a])
  })

  it("a cancelled item is never checked, from any place in the heap, and the rest keep their order", () => {
    const { heap, order, item } = setup()
    const items = [1500, 1100, 1400, 1200, 1300, 1600, 1700].map((at) => {
      const it = item(String(at))
      heap.schedule(it, at)
      return it
    })
    heap.cancel(items[2]!) // 1400, inside the heap
    assertHeap(heap)
    heap.cancel(items[1]!) // 1100, the root
    assertHeap(heap)
    heap.cancel(items[1]!) // not in the heap: nothing
    assert.strictEqual(items[1]!.deadlineIndex, -1)
    heap.cancel(items[6]!) // 1700, the last
    assertHeap(heap)
    heap.run(5000)
    assert.deepStrictEqual(order, ["1200", "1300", "1500", "1600"])
  })

  it("arms its one timer for the earliest item, and clears it when the last goes", () => {
    const { heap, item, timers, timerStates } = setup()
    const a = item("a")
    const b = item("b")
    const c = item("c")
    heap.schedule(a, 1500)
    assert.deepStrictEqual(timerStates(), [[500, false]])
    assert.strictEqual(heap.timer, timers[0])
    assert.strictEqual(heap.timerAt, 1500)
    heap.schedule(b, 1800)
    heap.schedule(c, 1500)
    assert.strictEqual(timers.length, 1, "an item due no earlier does not re-arm")
    heap.schedule(b, 1200)
    assert.deepStrictEqual(
      timerStates(),
      [
        [500, true],
        [200, false]
      ],
      "an earlier one does"
    )
    assert.strictEqual(heap.timerAt, 1200)
    heap.cancel(b)
    heap.cancel(c)
    assert.isFalse(timers[1]!.cleared, "an item is left")
    heap.cancel(a)
    assert.isTrue(timers[1]!.cleared)
    assert.isUndefined(heap.timer)
    assert.strictEqual(heap.timerAt, Infinity)
    heap.cancel(a)
    assert.strictEqual(timers.length, 2)
  })

  it("an item that schedules itself again while checked is checked again later, one timer armed after", () => {
    const { clock, heap, order, item, timers, timerStates } = setup()
    const a = item("a")
    const b = item("b")
    heap.schedule(a, 1100)
    heap.schedule(b, 1300)
    a.again = 1250
    clock.time = 1200
    timers[0]!.fire()
    assert.deepStrictEqual(order, ["a"])
    assert.strictEqual(a.deadlineAt, 1250)
    assert.deepStrictEqual(
      timerStates(),
      [
        [100, false],
        [50, false]
      ],
      "the timer that fired is not cleared, and one is armed for the earliest"
    )
    assert.strictEqual(heap.timerAt, 1250)
    clock.time = 1300
    timers[1]!.fire()
    assert.deepStrictEqual(order, ["a", "a", "b"])
    assert.deepStrictEqual(a.checks, [1200, 1300])
    assert.strictEqual(timers.length, 2)
    assert.isFalse(timers[1]!.cleared)
    assert.isUndefined(heap.timer)
    assert.strictEqual(heap.timerAt, Infinity)
  })

  it("a timer that fires early checks nothing and is armed again for what is left", () => {
    const { clock, heap, order, item, timers } = setup()
    heap.schedule(item("a"), 1100)
    clock.time = 1099.5
    timers[0]!.fire()
    assert.deepStrictEqual(order, [])
    assert.strictEqual(timers[1]!.millis, 0.5)
    clock.time = 1100
    timers[1]!.fire()
    assert.deepStrictEqual(order, ["a"])
  })

  it("a removal that moves the last item next to smaller ones moves it up", () => {
    const { heap, order, item } = setup()
    const items = new Map([1, 10, 2, 11, 12, 3, 4].map((at) => [at, item(String(at))]))
    for (const [at, it] of items) heap.schedule(it, at)
    // 12 is a child of 10; the last item, 4, is in the other half and takes 12's place under 10.
    heap.cancel(items.get(12)!)
    assertHeap(heap)
    heap.run(100)
    assert.deepStrictEqual(order, ["1", "2", "3", "4", "10", "11"])
  })

  it("keeps the heap in order under any mix of schedules, cancels and runs", () => {
    const { heap, order, item } = setup()
    const items = Array.from({ length: 40 }, (_, i) => item(String(i)))
    // A fixed pseudo-random sequence: the same operations on every run.
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    const due = new Map<Item, number>()
    let now = 1000
    for (let step = 0; step < 2000; step++) {
      const it = items[random(items.length)]!
      const op = random(10)
      if (op < 6) {
        const at = now + 1 + random(500)
        heap.schedule(it, at)
        due.set(it, Math.min(due.get(it) ?? Infinity, at))
      } else if (op < 8) {
        heap.cancel(it)
        due.delete(it)
      } else {
        now += random(100)
        order.length = 0
        heap.run(now)
        const expected = [...due].filter(([, at]) => at <= now).sort((x, y) => x[1] - y[1])
        assert.deepStrictEqual(
          order.map((name) => due.get(items[Number(name)]!)),
          expected.map(([, at]) => at),
          "checked in the order of their times"
        )
        for (const [checked] of expected) due.delete(checked)
      }
      assertHeap(heap)
      assert.strictEqual(heap.heap.length, due.size)
    }
  })

  it.live("checks an item on its real timer once its time has come, not before", () =>
    Effect.gen(function* () {
      const order: Array<string> = []
      const a = new Item("a", shared, order)
      const scheduledAt = performance.now()
      shared.schedule(a, scheduledAt + 40)
      yield* until(() => a.checks.length === 1, "the timer to check the item")
      assert.isAtLeast(a.checks[0]!, scheduledAt + 40)
      assert.strictEqual(a.deadlineIndex, -1)
    })
  )

  it.live("holds a transport while its wait has a deadline, and lets it go when it no longer needs checking", () =>
    Effect.gen(function* () {
      const timed = yield* socketPair()
      const endless = yield* socketPair()
      const settled = yield* socketPair()
      const closed = yield* socketPair()
      const aborted = yield* socketPair()
      const peer = yield* socketPair()
      const transport = (pair: typeof timed) => NodeConnection.makeTransport(pair.server)
      const inHeap = (t: Connection.Transport) => shared.heap.some((item) => item === (t as unknown as Deadline))
      const events: Array<string> = []
      const start = performance.now()

      // A wait with a deadline is checked at its start plus its deadline, and times out at exactly that time.
      const first = transport(timed)
      first.awaitReadable(100_000, (event) => events.push(`timed ${event}`), start)
      assert.isTrue(inHeap(first))
      assert.strictEqual((first as unknown as Deadline).deadlineAt, start + 100_000)

      // A wait without one is not in the heap.
      const second = transport(endless)
      second.awaitReadable(Infinity, (event) => events.push(`endless ${event}`), start)
      assert.isFalse(inHeap(second))

      // A wait with a deadline that ended with bytes, followed by one without: dropped at its check.
      const third = transport(settled)
      third.awaitReadable(50_000, (event) => events.push(`settled ${event}`), start)
      settled.client.write("x")
      yield* until(() => events.includes("settled readable"), "the bytes")
      third.poll(10)
      third.awaitReadable(Infinity, (event) => events.push(`settled again ${event}`), start)

      // Closed, aborted or closed by the peer while in the heap: out of it at once.
      const fourth = transport(closed)
      fourth.awaitReadable(100_000, () => {}, start)
      fourth.close()
      assert.isFalse(inHeap(fourth), "close")
      const fifth = transport(aborted)
      fifth.awaitReadable(100_000, () => {}, start)
      fifth.abort()
      assert.isFalse(inHeap(fifth), "abort")
      const sixth = transport(peer)
      sixth.awaitReadable(100_000, () => {}, start)
      peer.client.resetAndDestroy()
      yield* until(() => peer.server.closed, "the peer's close")
      assert.isFalse(inHeap(sixth), "the peer's close")

      shared.run(start + 50_000)
      assert.isFalse(inHeap(third), "checked, and waiting without a deadline now")
      assert.isTrue(inHeap(first))
      shared.run(start + 100_000)
      assert.deepStrictEqual(events, ["settled readable", "timed timeout"])
      assert.isFalse(inHeap(first))
      second.close()
      third.close()
    })
  )

  it.live("times out the waits of several sockets, each on its own deadline, and only the silent ones", () =>
    Effect.gen(function* () {
      const pairs = yield* Effect.all(Array.from({ length: 4 }, () => socketPair()))
      const transports = pairs.map((pair) => NodeConnection.makeTransport(pair.server))
      const events: Array<{ readonly index: number; readonly event: Connection.ReadyEvent; readonly after: number }> =
        []
      const started = performance.now()
      // Started in no particular order: deadlines of 180, 60, 120 and 90 ms.
      for (const [index, millis] of [180, 60, 120, 90].entries()) {
        transports[index]!.awaitReadable(millis, (event) =>
          events.push({ index, event, after: performance.now() - started })
        )
      }
      // The fourth hears from its peer before its deadline.
      pairs[3]!.client.write("x")
      yield* until(() => events.length === 4, "every wait to end")
      assert.deepStrictEqual(
        events.map(({ index, event }) => [index, event]),
        [
          [3, "readable"],
          [1, "timeout"],
          [2, "timeout"],
          [0, "timeout"]
        ]
      )
      for (const { index, event, after } of events) {
        if (event === "timeout") assert.isAtLeast(after, [180, 60, 120][index]!)
      }
      for (const transport of transports) transport.close()
      assert.strictEqual(shared.heap.length, 0, "closed transports leave the heap")
    })
  )
})
