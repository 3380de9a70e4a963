/**
 * The test projects of the workspace: one per package, each configured by the
 * `vitest.config.ts` inside it. Vitest 5 no longer discovers this file by
 * itself, so `vitest.config.ts` re-exports it and `vitest run` (or
 * `vitest --config vitest.workspace.ts`) both use this definition.
 *
 * The system tests under `e2e/` are projects too, but `npm test` leaves them
 * out: `reliability` (`e2e/reliability/`, the real server under abuse, minutes
 * long; `--project '!reliability'`), run with `npm run test:reliability`;
 * `balancers` (`e2e/balancers/`, the deployment files of `deploy/` run with
 * the real HAProxy and nginx), run with `npm run test:balancers` after
 * `.ci/install-balancers`; and `browser` (`e2e/browser/`, the status page in
 * headless Chromium), run with `npm run test:browser`.
 *
 * `npm run coverage` runs the package projects with V8 coverage of the
 * packages' sources and fails under each package's thresholds (CI runs it).
 * The thresholds sit a little under what the suites reach today, so a change
 * that leaves code untested fails; raise them when coverage rises.
 */
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*", "e2e/reliability", "e2e/browser", "e2e/balancers"],
    coverage: {
      provider: "v8",
      // Relative to each selected project's root under a --project filter (as
      // `npm run coverage` runs), to the repository's otherwise.
      include: ["src/**/*.ts", "packages/*/src/**/*.ts"],
      reporter: ["text", "html", "json-summary"],
      reportsDirectory: "reports/coverage",
      // The node tests run the `pool-manager` command and its cluster as child
      // processes: their code counts too.
      autoAttachSubprocess: true,
      reportOnFailure: true,
      thresholds: {
        "packages/core/src/**": { statements: 99, branches: 96, functions: 95, lines: 99 },
        "packages/node/src/**": { statements: 97, branches: 89, functions: 94, lines: 97 }
      }
    }
  }
})
