/**
 * The one cleanup every system test runs after itself (`afterEach(killAll)`):
 * the processes it started are killed and its temporary folders removed, so a
 * failing test leaves nothing that could disturb the next one.
 */
import { killProcesses } from "./processes.ts"
import { removeTempDirs } from "./temp.ts"

/** Kills every process the harness started (SIGKILL), waits for them, and removes the temporary folders. */
export const killAll = async (): Promise<void> => {
  await killProcesses()
  removeTempDirs()
}
