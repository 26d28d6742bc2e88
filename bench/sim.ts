/**
 * `npm run bench -- sim [sim10k] [sim100k] [stack]`: the simulator's speed. sim10k and sim100k run
 * the honest baseline with churn (docs/simulation.md) for 24 epochs on the fast engine (the same
 * world, schedule, registry, reward function and tree as the production stack, without the
 * messages), each in its own child process so that sim100kRss is that run's peak alone; `stack`
 * runs 100 nodes for 6 epochs through the production verifier stack on the simulated mesh.
 * Targets: sim10k <= 60 s, sim100k <= 600 s, sim100kRss <= 8192 MB. Each row carries the machine's
 * 1-minute load average at the child's start and end (`load`) and, for the fast engine, the time to
 * the first posted epoch (building the world included) and the mean of the others (`firstEpochS`,
 * `epochS`): the machine is shared, so a time means little without them.
 */
import { fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { simulate } from '../src/sim/index.js'
import { report } from './report.js'

const BENCH = 'sim'
const PARTS = ['sim10k', 'sim100k', 'stack'] as const
const CHILD_FLAG = '--meshwork-sim-child'
const EPOCHS = 24

interface ChildResult {
  seconds: number
  /** Until the first epoch was posted (building the world included), and the mean of the others. */
  firstEpochSeconds: number
  epochSeconds: number
  maxRssMb: number
  honestShare: number
  paidLastEpoch: number
  /** 1-minute load average at the start and the end. */
  load: [number, number]
}

async function child(nodes: number, engine: 'fast' | 'stack', epochs: number): Promise<ChildResult> {
  const loadAtStart = loadavg()[0] as number
  const t0 = performance.now()
  const posted: number[] = []
  const result = await simulate({
    scenario: 'baseline',
    nodes,
    epochs,
    seed: 1,
    engine,
    onProgress: (_run, epoch, total) => {
      posted.push(performance.now())
      process.stderr.write(
        `  ${nodes} nodes: epoch ${epoch}/${total}, ${((performance.now() - t0) / 1000).toFixed(1)} s, load ${(loadavg()[0] as number).toFixed(2)}\n`,
      )
    },
  })
  const first = posted[0] ?? performance.now()
  const last = posted.at(-1) ?? first
  return {
    seconds: (performance.now() - t0) / 1000,
    firstEpochSeconds: (first - t0) / 1000,
    epochSeconds: posted.length > 1 ? (last - first) / 1000 / (posted.length - 1) : 0,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    honestShare: result.honestShare,
    paidLastEpoch: result.perEpoch.at(-1)?.paid ?? 0,
    load: [loadAtStart, loadavg()[0] as number],
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
      load: r.load.map(round2),
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
      firstEpochS: round2(r.firstEpochSeconds),
      epochS: round2(r.epochSeconds),
      load: r.load.map(round2),
      note: `${nodes} nodes, 3 verifiers, ${EPOCHS} epochs, baseline with churn, fast engine`,
    })
    if (part === 'sim100k')
      report({
        bench: BENCH,
        metric: 'sim100kRss',
        value: Math.round(r.maxRssMb),
        unit: 'MB',
        target: '<= 8192',
        load: r.load.map(round2),
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
