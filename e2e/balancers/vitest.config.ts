import { defineProject } from "vitest/config"
import { resolveSources } from "../../vitest.shared.ts"

/**
 * The deployment files of `deploy/` run with the real HAProxy and nginx in
 * front of real `pool-manager` processes, all on loopback ports. A missing
 * binary fails (install them with `.ci/install-balancers`). Files run one at
 * a time: they start several processes and measure errors under load, which
 * a neighbour would skew on a 2-core machine. Not part of `npm test`; run
 * `npm run test:balancers`.
 */
export default defineProject({
  ssr: resolveSources,
  test: {
    name: "balancers",
    include: ["**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: false
  }
})
