import { defineProject } from "vitest/config"
import { resolveSources } from "../../vitest.shared.ts"

/**
 * Tests in a real browser: Debian's Chromium (`/usr/bin/chromium`, or
 * `CHROMIUM`), driven headless with `puppeteer-core`, which never downloads a
 * browser of its own. A machine without Chromium fails these tests; `.ci/run`
 * installs it first. Not part of `npm test`; run `npm run test:browser`.
 */
export default defineProject({
  ssr: resolveSources,
  test: {
    name: "browser",
    include: ["**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: false
  }
})
