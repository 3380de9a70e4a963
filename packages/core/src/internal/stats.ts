/**
 * `PoolStats` from the manager's counters: the counted fields are copied, the
 * others derived here, and nothing reads the `Pool`'s own state (only its
 * strategy does, in `workers.ts`).
 */
import type { PoolStats } from "../PoolManager.ts"
import type { ManagerState } from "./state.ts"

/** Workers neither serving a connection nor spawned for one that waits for them. */
const idle = (state: ManagerState): number => Math.max(0, state.counters.workers - state.counters.busy - state.reserved)

/** Bytes written so far, by ended and live connections. */
const bytesWritten = (state: ManagerState): number => {
  let total = state.counters.bytesWritten
  const lifecycle = state.lifecycle
  if (lifecycle._tag !== "Stopped")
    for (const served of lifecycle.period.connections) total += served.transport.bytesWritten
  return total
}

/** One field of `PoolStats`, computed alone (metrics read them one by one). */
export const read = (state: ManagerState, key: keyof PoolStats): number | boolean => {
  switch (key) {
    case "running":
      return state.lifecycle._tag === "Running"
    case "idle":
      return idle(state)
    case "waiting":
      return state.admission.waiting()
    case "bytesWritten":
      return bytesWritten(state)
    default:
      return state.counters[key]
  }
}

/** A consistent snapshot: taken in one synchronous step. */
export const snapshot = (state: ManagerState): PoolStats => ({
  ...state.counters,
  running: state.lifecycle._tag === "Running",
  idle: idle(state),
  waiting: state.admission.waiting(),
  bytesWritten: bytesWritten(state)
})
