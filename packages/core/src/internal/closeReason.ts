/**
 * Why the serve loop closes a connection, and the counter each reason counts
 * in (`PoolStats.closedBy*`, `pool_connections_closed_total{reason}`).
 */
import type { Counters } from "./counters.ts"

/** Why the serve loop closed a connection, for counters and debug logs. */
export type CloseReason =
  | "peer closed"
  | "deadline"
  | "write timeout"
  | "message too large"
  | "message limit"
  | "stopping"
  | "frame too large"
  | "bad framing"

/** Counts a close in the counter of its reason. */
export const count = (counters: Counters, reason: CloseReason): void => {
  switch (reason) {
    case "peer closed":
      counters.closedByPeer++
      break
    case "deadline":
    case "write timeout":
      counters.closedByDeadline++
      break
    case "message too large":
    case "frame too large":
      counters.closedBySize++
      break
    case "bad framing":
      counters.closedByFraming++
      break
    case "message limit":
      counters.closedByMessageLimit++
      break
    case "stopping":
      counters.closedByStop++
      break
  }
}
