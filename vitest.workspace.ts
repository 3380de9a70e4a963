/**
 * The test projects of the workspace: one per package, each configured by the
 * `vitest.config.ts` inside it. Vitest 5 no longer discovers this file by
 * itself, so `vitest.config.ts` re-exports it and `vitest run` (or
 * `vitest --config vitest.workspace.ts`) both use this definition.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"]
  }
})
