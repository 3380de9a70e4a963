/**
 * The harness every system test suite under `e2e/` shares, one module per
 * concept: where things are (paths), starting and killing processes
 * (processes, cleanup), loopback ports, bounded waits, temporary folders,
 * /proc measurements, HTTP and client requests, and report lines. What only
 * one suite needs stays in that suite's own `harness.ts`.
 */
export * from "./cleanup.ts"
export * from "./clients.ts"
export * from "./http.ts"
export * from "./paths.ts"
export * from "./ports.ts"
export * from "./processes.ts"
export * from "./procfs.ts"
export * from "./reports.ts"
export * from "./temp.ts"
export * from "./waits.ts"
