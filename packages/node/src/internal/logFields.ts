/**
 * The data of the server's log lines as fields, for JSON logs: where it
 * listens (`host` and `port`, or `path`) and each setting under its flag's
 * name (`max-workers`, durations as the flags spell them, `3s`), so a log
 * shipper reads them without parsing the message.
 */
import type * as Net from "node:net"
import type * as ManagerConfig from "@pool-manager/core/ManagerConfig"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"

/**
 * A duration as the flags spell it (`3s`, `infinity`). Here rather than with
 * the flags so the log lines of a server that never parses flags (a worker,
 * an embedding program) do not load Effect's CLI.
 */
export const showDuration = (duration: Duration.Duration): string =>
  Duration.isFinite(duration) ? Duration.format(duration) : "infinity"

/** `host` and `port` of a TCP address, `path` of a unix socket. */
export const addressFields = (
  address: NetAddress.SocketAddress | Net.AddressInfo | string
): Readonly<Record<string, string | number>> => {
  if (typeof address === "string") return { path: address }
  if (NetAddress.isInetAddress(address)) return { host: NetAddress.formatIp(address.address), port: address.port }
  if (NetAddress.isUnixPathAddress(address)) return { path: address.path }
  const info = address as Net.AddressInfo
  return { host: info.address, port: info.port }
}

/** An address as the listening line shows it: `127.0.0.1:6263`, `unix:/run/pool.sock`. */
export const where = (address: NetAddress.SocketAddress): string =>
  NetAddress.isInetAddress(address) ? String(address) : `unix:${String(address)}`

/** Each setting of `config` under its flag's name (`flagNames`). */
export const settingFields = (
  config: ManagerConfig.ManagerConfig,
  flagNames: { readonly [K in keyof ManagerConfig.ManagerConfig]: string }
): Readonly<Record<string, unknown>> =>
  Object.fromEntries(
    Object.entries(flagNames).map(([field, flag]) => {
      const value = config[field as keyof ManagerConfig.ManagerConfig]
      return [flag, Duration.isDuration(value) ? showDuration(value) : value]
    })
  )

/**
 * Logs a line with data: in JSON, `message` with the data as `fields`; in
 * text, `text` (the message with the data written out, as people read it).
 */
export const logWithFields = (
  json: boolean,
  message: string,
  fields: Readonly<Record<string, unknown>>,
  text: string
): Effect.Effect<void> => (json ? Effect.log(message).pipe(Effect.annotateLogs(fields)) : Effect.log(text))
