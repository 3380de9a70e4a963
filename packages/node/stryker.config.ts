/**
 * StrykerJS over `packages/node/src` with the node vitest project
 * (`npm run mutation:node`, from the repository root). See
 * `stryker.shared.ts` and TESTING.md.
 */
import { packageConfig } from "../../stryker.shared.ts"

export default packageConfig("node")
