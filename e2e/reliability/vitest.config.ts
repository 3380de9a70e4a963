import { defineProject } from "vitest/config"
import { resolveSources } from "../../vitest.shared.ts"

/**
 * The reliability suite: the real server under abuse (floods, resets, signals,
 * bad config, misbehaving callbacks). Files run one at a time: they measure
 * times, file descriptors and memory, which a neighbour under load would skew
 * on a 2-core machine. Not part of `npm test`; run `npm run test:reliability`.
 */
export default defineProject({
  ssr: resolveSources,
  test: {
    name: "reliability",
    include: ["**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false
  }
})
