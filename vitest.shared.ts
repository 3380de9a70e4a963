/**
 * Settings every test project shares. Tests run the packages from their
 * TypeScript sources: the `@pool-manager/source` export condition (see the
 * README's Development section) points each package at `src/*.ts`, so no
 * build is needed before `npm test` and a test never runs a stale `dist/`.
 */
import { defaultServerConditions } from "vite"
import type { ViteUserConfig } from "vitest/config"

/** Resolve workspace packages to their sources, then as Node would. */
export const resolveSources: NonNullable<ViteUserConfig["ssr"]> = {
  resolve: { conditions: ["@pool-manager/source", ...defaultServerConditions] }
}
