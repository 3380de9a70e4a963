/**
 * Bounded waits for the system tests: a wait that can fail fails with an error
 * naming what it waited for (and, through `details`, what it saw instead), so
 * a broken run reads as an assertion rather than as the test's timeout.
 */

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Polls `check` every `interval` ms until it is true; rejects after `timeout` ms with `what` and `details()`. */
export const waitUntil = async (
  check: () => boolean,
  what: string,
  timeout = 10_000,
  interval = 20,
  details: () => string = () => ""
): Promise<number> => {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}${details()}`)
    await sleep(interval)
  }
  return Date.now() - started
}
