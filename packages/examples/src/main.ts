/**
 * Runs one of the example programs by name: `npm run example -- <name>
 * [flags]` from the repository root (`npm run example -- redis --port 6380
 * --sync`, `npm run example -- memcached --port 0`). Each program module exports a `main(args)`; `--help` after the
 * name lists its flags.
 */

/** The runnable programs, loaded on demand so one program does not load the others. */
const programs: Record<string, () => Promise<{ readonly main: (args: ReadonlyArray<string>) => void }>> = {
  redis: () => import("./redis.ts"),
  memcached: () => import("./memcached.ts")
}

const [name, ...args] = process.argv.slice(2)
const load = name === undefined ? undefined : programs[name]
if (load === undefined) {
  console.error(
    `usage: npm run example -- <${Object.keys(programs).join("|")}> [flags] (--help lists a program's flags)`
  )
  process.exitCode = 2
} else {
  load().then((program) => program.main(args))
}
