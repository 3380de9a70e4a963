/**
 * The figures a system test measured, printed as one line each
 * (`[suite] row: {json}`): visible with `--reporter verbose` and in CI logs,
 * and what the README's tables of measurements are copied from.
 */

/** A `report(row, values)` that labels its lines with `suite`. */
export const reporter =
  (suite: string) =>
  (row: string, values: Record<string, unknown>): void => {
    console.log(`[${suite}] ${row}: ${JSON.stringify(values)}`)
  }
