import { existsSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError } from '../../core/errors.js'
import {
  renderReport,
  SCENARIOS,
  type SimEngine,
  STACK_ENGINE_MAX_NODES,
  scenarioByName,
  simulate,
} from '../../sim/index.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { parsePositiveInt } from '../parse.js'

interface SimRunFlags {
  nodes?: string
  verifiers?: string
  epochs?: string
  seed?: string
  engine?: string
  report?: string
}

/** Largest simulated network and run. */
const MAX_NODES = 1_000_000
const MAX_VERIFIERS = 32
const MAX_EPOCHS = 8_760

function parseSeed(value: string): number {
  const n = Number(value)
  if (!/^\d{1,10}$/.test(value) || n > 0xffff_ffff) {
    throw new InvalidArgumentError(`--seed must be a whole number from 0 to 4294967295, got "${value}"`)
  }
  return n
}

function parseEngine(value: string): SimEngine {
  if (value !== 'stack' && value !== 'fast')
    throw new InvalidArgumentError(`--engine must be stack or fast, got "${value}"`, {
      hint: 'stack runs the production verifier code on the simulated mesh; fast skips the messages',
    })
  return value
}

function checkReportPath(file: string): string {
  const path = resolve(file)
  const dir = dirname(path)
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InvalidArgumentError(`--report: directory ${dir} does not exist`, { hint: 'Create it first' })
  if (existsSync(path) && statSync(path).isDirectory())
    throw new InvalidArgumentError(`--report: ${path} is a directory`, {
      hint: 'Name a file such as report.html',
    })
  return path
}

/** `meshwork sim run|list`: scenarios of the real protocol code on a simulated network. */
export function simCommands(program: Command): Command {
  const sim = program
    .command('sim')
    .description('simulate the network: the production code on a simulated mesh, with churn and attackers')
  sim
    .command('list')
    .description('list the scenarios')
    .action((_opts: unknown, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      out.json(
        SCENARIOS.map((s) => ({
          name: s.name,
          summary: s.summary,
          attack: s.attacker !== undefined,
          ...s.defaults,
        })),
      )
      for (const s of SCENARIOS) out.info(`${s.name.padEnd(20)} ${s.summary}`)
    })
  sim
    .command('run')
    .description('run a scenario; the same seed gives the same result, byte for byte')
    .argument('<scenario>', `one of: ${SCENARIOS.map((s) => s.name).join(', ')}`)
    .option('--nodes <n>', 'honest nodes at the start (default: the scenario’s)')
    .option('--verifiers <n>', 'verifiers (default: the scenario’s)')
    .option('--epochs <n>', 'epochs to run (default: the scenario’s)')
    .option('--seed <n>', 'seed of everything random', '1')
    .option('--engine <engine>', `stack (the production code; up to ${STACK_ENGINE_MAX_NODES} nodes) or fast`)
    .option('--report <file>', 'also write a self-contained HTML report with charts')
    .action(async (name: string, opts: SimRunFlags, cmd: Command) => {
      const global = globalOptions(cmd)
      const out = createOutput(global)
      const scenario = scenarioByName(name)
      const nodes = opts.nodes === undefined ? undefined : parsePositiveInt(opts.nodes, '--nodes', MAX_NODES)
      const verifiers =
        opts.verifiers === undefined
          ? undefined
          : parsePositiveInt(opts.verifiers, '--verifiers', MAX_VERIFIERS)
      const epochs =
        opts.epochs === undefined ? undefined : parsePositiveInt(opts.epochs, '--epochs', MAX_EPOCHS)
      const seed = parseSeed(opts.seed ?? '1')
      const engine = opts.engine === undefined ? undefined : parseEngine(opts.engine)
      if (engine === 'stack' && (nodes ?? scenario.defaults.nodes) > STACK_ENGINE_MAX_NODES)
        throw new InvalidArgumentError(
          `--engine stack runs at most ${STACK_ENGINE_MAX_NODES} nodes, not ${nodes ?? scenario.defaults.nodes}`,
          { hint: 'Use --engine fast, or fewer --nodes' },
        )
      if (scenario.name === 'colluding-verifiers' && (verifiers ?? scenario.defaults.verifiers) < 3)
        throw new InvalidArgumentError(
          'colluding-verifiers needs at least 3 verifiers (a minority must exist)',
          {
            hint: 'Pass --verifiers 3 or more',
          },
        )
      const report = opts.report === undefined ? undefined : checkReportPath(opts.report)
      const started = performance.now()
      const result = await simulate({
        scenario: scenario.name,
        seed,
        ...(nodes === undefined ? {} : { nodes }),
        ...(verifiers === undefined ? {} : { verifiers }),
        ...(epochs === undefined ? {} : { epochs }),
        ...(engine === undefined ? {} : { engine }),
        onProgress: (run, posted, total) =>
          out.step(
            `epoch ${posted - 1} settled${scenario.attacker === undefined ? '' : ` (${run === 'attack' ? 'attack' : 'honest twin'} run)`}, ${((performance.now() - started) / 1000).toFixed(1)} s`,
            posted,
            total,
          ),
      })
      if (report !== undefined) writeFileSync(report, renderReport(result))
      out.json(result)
      out.info(
        `${result.scenario}: ${result.nodes} nodes, ${result.verifiers} verifiers, ${result.epochs} epochs, seed ${result.seed}, engine ${result.engine}`,
      )
      for (const [cohort, c] of Object.entries(result.cohorts))
        out.info(
          `  ${cohort.padEnd(12)} rewards ${c.rewards.toFixed(2)} MESH, costs ${c.runningCosts.toFixed(2)}, fees ${c.fees.toFixed(2)}, slashed ${c.slashed.toFixed(2)}, net ${c.net.toFixed(2)}`,
        )
      out.info(`  honest share of what was paid: ${(result.honestShare * 100).toFixed(2)}%`)
      if (result.attack !== null) {
        const a = result.attack
        out.info(
          `  attacker profit: ${a.profit.toFixed(2)} MESH (net ${a.net.toFixed(2)}, honest twin ${a.twinNet.toFixed(2)}): ${a.profit < 0 ? 'the attack does not pay' : 'THE ATTACK PAYS'}`,
        )
        out.info(
          `  detected: ${a.detectionEpoch === null ? 'never' : `epoch ${a.detectionEpoch}`}${a.forgedRoots.attempted > 0 ? `; forged roots ${a.forgedRoots.accepted} of ${a.forgedRoots.attempted} accepted` : ''}`,
        )
      }
      if (report !== undefined) out.info(`  report: ${report}`)
    })
  return sim
}
