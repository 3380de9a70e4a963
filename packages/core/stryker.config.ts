/**
 * StrykerJS over `packages/core/src` with the core vitest project
 * (`npm run mutation:core`, from the repository root). See
 * `stryker.shared.ts` and TESTING.md.
 */
import { packageConfig } from "../../stryker.shared.ts"

export default packageConfig("core")
