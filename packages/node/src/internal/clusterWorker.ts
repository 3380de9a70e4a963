/**
 * The worker's side of `NodeCluster`, shared with `NodeTcpServer`: which
 * process this is, and in the `reuseport` mode where to bind and how to tell
 * the primary that it listens. Only `node:` imports, so the server can load it
 * without the primary's metrics code.
 */
import Cluster from "node:cluster"
import type * as Net from "node:net"

/** The worker's number (1..N). */
export const processEnv = "POOL_MANAGER_PROCESS"
/** `reuseport` when each worker binds the port itself. */
export const modeEnv = "POOL_MANAGER_CLUSTER_MODE"
/** In the `reuseport` mode, the port the first worker got (so port 0 means one port for all). */
export const portEnv = "POOL_MANAGER_CLUSTER_PORT"
/** The text of the config file the primary last loaded successfully (a replacement starts with it). */
export const configTextEnv = "POOL_MANAGER_CLUSTER_CONFIG_TEXT"
/** What a `reuseport` worker sends the primary once it listens (node:cluster only reports hand-off listeners). */
export const listeningMessage = "pool-manager:listening"

export const workerNumber = (): number | undefined => {
  const value = process.env[processEnv]
  return Cluster.isWorker && value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined
}

/**
 * In a worker of the `reuseport` mode: bind with `reusePort`, on the first
 * worker's port when the primary knows it already. `undefined` elsewhere.
 */
export const reusePort = (): { readonly port: number | undefined } | undefined => {
  if (workerNumber() === undefined || process.env[modeEnv] !== "reuseport") return undefined
  const port = process.env[portEnv]
  return { port: port !== undefined && /^\d+$/.test(port) ? Number(port) : undefined }
}

export interface ListeningMessage {
  readonly type: typeof listeningMessage
  readonly address: Net.AddressInfo
}

export const isListeningMessage = (message: unknown): message is ListeningMessage =>
  typeof message === "object" && message !== null && (message as { type?: unknown }).type === listeningMessage

/** Tells the primary this worker listens (the primary may be gone; then nobody needs to know). */
export const announce = (address: Net.AddressInfo): void => {
  const message: ListeningMessage = { type: listeningMessage, address }
  process.send?.(message, undefined, {}, () => {})
}
