import { defineProject } from "vitest/config"
import { resolveSources } from "../../vitest.shared.ts"

export default defineProject({
  ssr: resolveSources,
  test: {
    name: "core",
    include: ["test/**/*.test.ts"]
  }
})
