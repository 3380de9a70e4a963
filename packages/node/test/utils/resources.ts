/**
 * What keeps this process's event loop alive, as Node itself counts it
 * (`process.getActiveResourcesInfo()`): a timer counts only while it is
 * referenced, and both ends of a loopback connection count as sockets. Tests
 * use it to show that a wait holds no referenced timer, or that a socket was
 * let go.
 */

const count = (kind: string): number => process.getActiveResourcesInfo().filter((each) => each === kind).length

/** The referenced timers of this process. */
export const referencedTimers = (): number => count("Timeout")

/** The open TCP sockets of this process (both ends of a loopback connection). */
export const openTcpSockets = (): number => count("TCPSocketWrap")
