/**
 * The test projects of the workspace: one per package, each configured by the
 * `vitest.config.ts` inside it. Vitest 5 no longer discovers this file by
 * itself, so `vitest.config.ts` re-exports it and `vitest run` (or
 * `vitest --config vitest.workspace.ts`) both use this definition.
 *
 * `reliability` (the real server under abuse, minutes long) is a project too,
 * but `npm test` leaves it out (`--project '!reliability'`); run it with
 * `npm run test:reliability`. `balancers` (the deployment files of `deploy/`
 * run with the real HAProxy and nginx) is left out the same way; run it with
 * `npm run test:balancers` after `.ci/install-balancers`.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*", "reliability", "browser", "balancers"]
  }
})
