/** One benchmark result line. */
export interface BenchRow {
  bench: string
  metric: string
  value: number
  unit: string
  baseline?: number
  ratio?: number
  [extra: string]: unknown
}

/** Prints a result as one JSON line on stdout. */
export function report(row: BenchRow): void {
  console.log(JSON.stringify(row))
}
