// The real definition of the test projects lives in vitest.workspace.ts.
export { default } from "./vitest.workspace.ts"
