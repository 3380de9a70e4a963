/**
 * The read deadlines of every socket transport in the process under one
 * timer: a binary heap of the transports whose wait has a deadline, ordered
 * by when each is next to be checked, and a timer for the earliest.
 *
 * A timer per connection, re-armed about once per deadline, cost a `Timeout`
 * object per connection per deadline; at 10,000 connections each one lived for
 * the whole deadline, so every one was promoted to the old generation
 * (BENCHMARKS.md). Here a wait costs nothing while its transport is already
 * in the heap due no later than the new deadline: a busy connection is checked
 * about once per deadline, as before, and put back with the deadline of the
 * wait it is in then. The timer runs only while some transport is in the heap.
 */
import { performance } from "node:perf_hooks"

/** What the heap holds: a transport, with its place and its key kept on itself. */
export interface Deadline {
  /** Its index in the heap, -1 when it is not in it. */
  deadlineIndex: number
  /** When it is next to be checked (`performance.now()` time), Infinity when not in the heap. */
  deadlineAt: number
  /** Called once its time has come, out of the heap: times its wait out, or schedules it again. */
  checkDeadline(now: number): void
}

/** The clock and the timers the heap uses (Node's, or a test's). */
export interface Clock {
  now(): number
  /** Calls `f` after `millis`, without keeping the process alive for it. */
  setTimer(f: () => void, millis: number): unknown
  clearTimer(timer: unknown): void
}

const nodeClock: Clock = {
  now: () => performance.now(),
  setTimer: (f, millis) => setTimeout(f, millis).unref(),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout)
}

/** A heap of deadlines and the one timer that checks them. */
export class Deadlines {
  readonly clock: Clock
  readonly heap: Array<Deadline> = []
  timer: unknown = undefined
  // When the timer is due, Infinity when none is armed.
  timerAt = Infinity
  readonly onTimer: () => void

  constructor(clock: Clock) {
    this.clock = clock
    // Through a local, as every closure stored on a property is (lint/noClosureOnProperty.grit).
    const onTimer = () => {
      // It fired: nothing to clear.
      this.timer = undefined
      this.run(clock.now())
    }
    this.onTimer = onTimer
  }

  /** Makes sure `item` is checked no later than `at`; never (Infinity) asks nothing. */
  schedule(item: Deadline, at: number): void {
    // An item due never would sit first in an otherwise empty heap, and a
    // timer armed for it fires at once (Node takes an infinite delay as 1 ms).
    if (!(at < Infinity)) return
    if (item.deadlineIndex < 0) {
      item.deadlineIndex = this.heap.length
      this.heap.push(item)
    } else if (at >= item.deadlineAt) {
      return
    }
    item.deadlineAt = at
    this.up(item.deadlineIndex)
    if (at < this.timerAt) this.arm(at)
  }

  /** Takes `item` out of the heap, if it is in it. */
  cancel(item: Deadline): void {
    const index = item.deadlineIndex
    if (index < 0) return
    this.removeAt(index)
    if (this.heap.length === 0) this.disarm()
  }

  /** Checks every item due by `now`, then arms the timer for the next. */
  run(now: number): void {
    // No timer is armed for the items checked here that schedule themselves
    // again: the one for the earliest is armed once they all are.
    this.timerAt = -Infinity
    while (this.heap.length > 0 && this.heap[0]!.deadlineAt <= now) {
      const item = this.heap[0]!
      this.removeAt(0)
      item.checkDeadline(now)
    }
    if (this.heap.length === 0) this.disarm()
    else this.arm(this.heap[0]!.deadlineAt)
  }

  arm(at: number): void {
    this.disarm()
    this.timerAt = at
    this.timer = this.clock.setTimer(this.onTimer, Math.max(0, at - this.clock.now()))
  }

  disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer)
    this.timer = undefined
    this.timerAt = Infinity
  }

  // Removes the item at `index`: the last item takes its place and moves to where it belongs.
  removeAt(index: number): void {
    const heap = this.heap
    const item = heap[index]!
    item.deadlineIndex = -1
    item.deadlineAt = Infinity
    const last = heap.pop()!
    if (index === heap.length) return
    this.place(last, index)
    this.down(index)
    this.up(last.deadlineIndex)
  }

  up(index: number): void {
    const heap = this.heap
    const item = heap[index]!
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]!
      if (parent.deadlineAt <= item.deadlineAt) break
      this.place(parent, index)
      index = parentIndex
    }
    this.place(item, index)
  }

  down(index: number): void {
    const heap = this.heap
    const item = heap[index]!
    while (true) {
      let child = 2 * index + 1
      if (child >= heap.length) break
      if (child + 1 < heap.length && heap[child + 1]!.deadlineAt < heap[child]!.deadlineAt) child++
      const next = heap[child]!
      if (item.deadlineAt <= next.deadlineAt) break
      this.place(next, index)
      index = child
    }
    this.place(item, index)
  }

  // Puts `item` at `index`: an item always knows its place in the heap.
  place(item: Deadline, index: number): void {
    this.heap[index] = item
    item.deadlineIndex = index
  }
}

/** The process's deadlines, shared by every socket transport. */
export const deadlines: Deadlines = new Deadlines(nodeClock)
