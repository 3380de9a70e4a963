/**
 * Loads the primary's module (internal/supervisor.ts) with the test file that
 * imports this one. `NodeCluster.runPrimary` imports it on first use, so
 * without this its top level would run inside whichever test starts the first
 * primary, and Stryker would count its definitions' mutants as covered by that
 * one test (where they survive) instead of as static, like every other
 * module's top level (TESTING.md, "no fresh imports").
 */
import "../../src/internal/supervisor.ts"
