/**
 * Where the system tests find what they run: the repository (every child
 * process starts there), the `pool-manager` command, and the deployment files
 * that the balancer and service tests run as written.
 */
import { fileURLToPath } from "node:url"

/** The repository root. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

/** The `pool-manager` executable (the OK/ERROR server), run from its TypeScript source. */
export const cliBin = fileURLToPath(new URL("../../packages/node/bin/pool-manager.ts", import.meta.url))

/** The `deploy/` folder. */
export const deployDir = fileURLToPath(new URL("../../deploy/", import.meta.url))
