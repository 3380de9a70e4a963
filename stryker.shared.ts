/**
 * What the mutation runs of the packages share (`npm run mutation`): StrykerJS
 * with the vitest runner, run from the repository root against one package at
 * a time, that package's own vitest project deciding which tests run.
 *
 * Reports go to `reports/mutation/<package>/` (git-ignored): `index.html` and
 * `mutation.json`. The incremental file, which makes a rerun test only the
 * mutants of code or tests that changed since the last run, is committed
 * (`mutation/<package>.incremental.json`): the baseline CI runs against.
 */

import type { PartialStrykerOptions } from "@stryker-mutator/api/core"

/**
 * Score thresholds per package (Stryker's score, in percent): 90 for core, 80
 * for node; a run under `break` fails.
 */
const breakAt = {
  core: { high: 95, low: 90, break: 90 },
  node: { high: 85, low: 80, break: 80 }
} as const

/**
 * Node leaves out its static mutants (those in code run when a module loads,
 * some 12% of them): each one reruns the whole real-socket suite, 2 minutes,
 * about 7.8 hours for all (TESTING.md). Core's suite is seconds long, so core
 * tests them all.
 */
const ignoreStatic = { core: false, node: true } as const

/** The options of the mutation run of `packages/<name>`. */
export const packageConfig = (name: "core" | "node"): PartialStrykerOptions => ({
  testRunner: "vitest",
  vitest: { configFile: `packages/${name}/vitest.config.ts`, dir: `packages/${name}` },
  mutate: [`packages/${name}/src/**/*.ts`],
  reporters: ["html", "json", "clear-text", "progress"],
  htmlReporter: { fileName: `reports/mutation/${name}/index.html` },
  jsonReporter: { fileName: `reports/mutation/${name}/mutation.json` },
  incremental: true,
  incrementalFile: `mutation/${name}.incremental.json`,
  thresholds: breakAt[name],
  ignoreStatic: ignoreStatic[name],
  // Both cores: a mutant's test run is single-threaded.
  concurrency: 2,
  // The first run is the whole suite with per-test coverage: node's takes about 4 minutes on an idle machine
  // (its cluster tests fork processes), over Stryker's default bound of 5 on a loaded one.
  dryRunTimeoutMinutes: 20,
  // Stryker copies the repository to a sandbox; these are build output and
  // generated files no test reads.
  ignorePatterns: ["bench/build", "**/dist", "docs/api", "reports", "tmp", "**/*.cpuprofile", ".stryker-tmp*"],
  // Stryker rewrites the named tsconfig for its sandbox with TypeScript's JS
  // API, which the workspace's TypeScript 7 does not have. The sandbox is a
  // copy of the whole repository, so no path in a tsconfig needs rewriting:
  // naming a file that does not exist skips the step.
  tsconfigFile: "stryker-rewrites-no-tsconfig.json",
  tempDirName: ".stryker-tmp"
})
