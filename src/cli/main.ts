import { Command, CommanderError } from 'commander'
import { InvalidArgumentError } from '../core/errors.js'
import { VERSION } from '../core/version.js'
import { chainInfoCommand } from './commands/chain-info.js'
import { chainStartCommand } from './commands/chain-start.js'
import { deployCommand } from './commands/deploy.js'
import { devnetCommand } from './commands/devnet.js'
import { govCommands } from './commands/gov.js'
import { jobCommands } from './commands/job-run.js'
import { makerCommands } from './commands/maker.js'
import { nodeInitCommand } from './commands/node-init.js'
import { nodeRegisterCommand } from './commands/node-register.js'
import { nodeSensorsCommand } from './commands/node-sensors.js'
import { nodeStartCommand } from './commands/node-start.js'
import { nodeStatusCommand } from './commands/node-status.js'
import { rewardsCommands } from './commands/rewards.js'
import { simCommands } from './commands/sim.js'
import { storageCommands } from './commands/storage.js'
import { streamCommands } from './commands/stream.js'
import { verifierCommands } from './commands/verifier.js'
import { reportError, toJson } from './output.js'

/** Builds the command tree; with `json`, usage errors are left to {@link main} to print as JSON. */
export function buildProgram(options: { json?: boolean } = {}): Command {
  const program = new Command('meshwork')
    .description('Meshwork: people-powered compute, storage, bandwidth and sensor data, paid on an EVM chain')
    .version(VERSION)
    .option('--verbose', 'debug logs and stack traces')
    .option('--json', 'machine-readable output on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  if (options.json) program.configureOutput({ writeErr: () => undefined })
  devnetCommand(program)
  deployCommand(program)
  const chain = program.command('chain').description('the embedded dev chain and the deployed network')
  chainStartCommand(chain)
  chainInfoCommand(chain)
  const node = program.command('node').description("an operator's node: identity, mesh, registration")
  nodeInitCommand(node)
  nodeStartCommand(node)
  nodeRegisterCommand(node)
  nodeStatusCommand(node)
  nodeSensorsCommand(node)
  const verifier = verifierCommands(program)
  const rewards = rewardsCommands(program)
  const job = jobCommands(program)
  const gov = govCommands(program)
  const maker = makerCommands(program)
  storageCommands(program)
  const sim = simCommands(program)
  const stream = streamCommands(program)
  for (const c of [
    program,
    chain,
    node,
    verifier,
    rewards,
    job,
    gov,
    maker,
    stream,
    sim,
    ...program.commands,
    ...chain.commands,
    ...node.commands,
    ...verifier.commands,
    ...rewards.commands,
    ...job.commands,
    ...gov.commands,
    ...maker.commands,
    ...stream.commands,
    ...sim.commands,
  ])
    c.exitOverride()
  return program
}

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code: 0 on success,
 * 1 on an error (one line naming the fix; stack with --verbose), 2 on a usage error.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose')
  const json = argv.includes('--json')
  const program = buildProgram({ json })
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0. Commander printed the usage error itself, unless --json, where it
      // goes to stdout as JSON instead.
      if (err.exitCode === 0) return 0
      if (json) {
        const error = new InvalidArgumentError(err.message.replace(/^error: /, ''))
        process.stdout.write(`${toJson({ error: error.toJSON() })}\n`)
      }
      return 2
    }
    return reportError(err, { verbose, json })
  }
}
