/**
 * `npm run bench -- sim [sim10k] [sim100k] [stack]`: the simulator's speed. sim10k and sim100k run
 * the honest baseline with churn (docs/simulation.md) for 24 epochs on the fast engine (the same
 * world, schedule, registry, reward function and tree as the production stack, without the
 * messages), each in its own child process so that sim100kRss is that run's peak alone; `stack`
 * runs 100 nodes for 6 epochs through the production verifier stack on the simulated mesh.
 * Targets: sim10k <= 60 s, sim100k <= 600 s, sim100kRss <= 8192 MB.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { simulate } from '../src/sim/index.js'
import { report } from './report.js'

const BENCH = 'sim'
const PARTS = ['sim10k', 'sim100k', 'stack'] as const
const CHILD_FLAG = '--meshwork-sim-child'
const EPOCHS = 24

interface ChildResult {
  seconds: number
  maxRssMb: number
  honestShare: number
  paidLastEpoch: number
}

async function child(nodes: number, engine: 'fast' | 'stack', epochs: number): Promise<ChildResult> {
  const t0 = performance.now()
  const result = await simulate({
    scenario: 'baseline',
    nodes,
    epochs,
    seed: 1,
    engine,
    onProgress: (_run, posted, total) =>
      process.stderr.write(
        `  ${nodes} nodes: epoch ${posted}/${total}, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      ),
  })
  return {
    seconds: (performance.now() - t0) / 1000,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    honestShare: result.honestShare,
    paidLastEpoch: result.perEpoch.at(-1)?.paid ?? 0,
  }
}

function inChild(nodes: number, engine: 'fast' | 'stack', epochs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = fork(fileURLToPath(import.meta.url), [CHILD_FLAG, String(nodes), engine, String(epochs)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    proc.once('message', (m) => resolve(m as ChildResult))
    proc.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the ${nodes}-node child exited with ${code}`))
    })
  })
}

const round2 = (x: number) => Math.round(x * 100) / 100

export async function run(args: string[] = []): Promise<void> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a))
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
  const wanted = (part: (typeof PARTS)[number]) => args.length === 0 || args.includes(part)
  if (wanted('stack')) {
    const r = await inChild(100, 'stack', 6)
    report({
      bench: BENCH,
      metric: 'simStack100',
      value: round2(r.seconds),
      unit: 's',
      note: '100 nodes, 3 verifiers, 6 epochs through the production verifier stack on the simulated mesh',
    })
  }
  for (const [part, nodes, target] of [
    ['sim10k', 10_000, '<= 60'],
    ['sim100k', 100_000, '<= 600'],
  ] as const) {
    if (!wanted(part)) continue
    const r = await inChild(nodes, 'fast', EPOCHS)
    report({
      bench: BENCH,
      metric: part,
      value: round2(r.seconds),
      unit: 's',
      target,
      honestShare: r.honestShare,
      note: `${nodes} nodes, 3 verifiers, ${EPOCHS} epochs, baseline with churn, fast engine`,
    })
    if (part === 'sim100k')
      report({
        bench: BENCH,
        metric: 'sim100kRss',
        value: Math.round(r.maxRssMb),
        unit: 'MB',
        target: '<= 8192',
        note: 'peak RSS of the 100k child process (tsx loaded)',
      })
  }
}

if (process.argv.includes(CHILD_FLAG)) {
  const at = process.argv.indexOf(CHILD_FLAG)
  const nodes = Number(process.argv[at + 1])
  const engine = process.argv[at + 2] === 'stack' ? 'stack' : 'fast'
  const epochs = Number(process.argv[at + 3])
  const result = await child(nodes, engine, epochs)
  if (process.send) process.send(result, () => process.exit(0))
  else console.log(JSON.stringify(result))
}
