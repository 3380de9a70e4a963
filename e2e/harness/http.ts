/**
 * One HTTP request to a server under test (its `/metrics`, `/healthz`,
 * `/stats.json`), bounded so that a server that stopped answering fails the
 * test within seconds rather than at the test's timeout.
 */

/** GET `url` (5 s at most): the status and the body. */
export const get = async (url: string): Promise<{ readonly status: number; readonly body: string }> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
  return { status: response.status, body: await response.text() }
}
