/**
 * What this package sends over a cluster worker's IPC channel, recorded
 * instead of sent: `process.send` is replaced until the scope closes, and the
 * test runner's own messages on that channel pass through untouched.
 */
import { Effect } from "effect"

/** A message this package sent (its `type` starts with `pool-manager:`). */
export interface Sent {
  readonly type: string
  readonly id: number
  readonly [key: string]: unknown
}

/** Records this package's messages to `process.send` until the scope closes; passes any other through. */
export const recordSends = Effect.acquireRelease(
  Effect.sync(() => {
    const original = process.send!
    const sent: Array<Sent> = []
    process.send = ((message: unknown, ...rest: Array<unknown>) => {
      const type = (message as { type?: unknown } | null)?.type
      if (typeof type !== "string" || !type.startsWith("pool-manager:")) {
        return (original as (...args: Array<unknown>) => boolean).call(process, message, ...rest)
      }
      sent.push(message as Sent)
      const callback = rest.find((each) => typeof each === "function") as ((error: null) => void) | undefined
      callback?.(null)
      return true
    }) as NonNullable<typeof process.send>
    return { sent, original }
  }),
  ({ original }) =>
    Effect.sync(() => {
      process.send = original
    })
).pipe(Effect.map(({ sent }) => sent))
