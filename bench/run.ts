/**
 * Benchmark runner: `npm run bench -- NAME` runs bench/NAME.ts, which prints one JSON object per
 * line: {"bench","metric","value","unit"} plus "baseline" and "ratio" where it compares. Further arguments
 * go to the benchmark (e.g. `npm run bench -- mesh gossip` runs only the mesh gossip part).
 */
import '../src/core/polyfill.js'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'report.ts')
  .map((f) => f.replace(/\.ts$/, ''))
const name = process.argv[2]
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${available.join(', ')})`)
  process.exit(2)
}
const mod = (await import(join(here, `${name}.ts`))) as { run: (args: string[]) => Promise<void> }
await mod.run(process.argv.slice(3))
