import { Command, CommanderError } from 'commander'
import { InvalidArgumentError } from '../core/errors.js'
import { chainInfoCommand } from './commands/chain-info.js'
import { chainStartCommand } from './commands/chain-start.js'
import { deployCommand } from './commands/deploy.js'
import { devnetCommand } from './commands/devnet.js'
import { reportError } from './output.js'

/** The package version, shown by --version. */
export const VERSION = '0.1.0'

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command('meshwork')
    .description('Meshwork: people-powered compute, storage, bandwidth and sensor data, paid on an EVM chain')
    .version(VERSION)
    .option('--verbose', 'debug logs and stack traces')
    .option('--json', 'machine-readable output on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  devnetCommand(program)
  deployCommand(program)
  const chain = program.command('chain').description('the embedded dev chain and the deployed network')
  chainStartCommand(chain)
  chainInfoCommand(chain)
  for (const c of [program, chain, ...program.commands, ...chain.commands]) c.exitOverride()
  return program
}

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code: 0 on success,
 * 1 on an error (one line naming the fix; stack with --verbose), 2 on a usage error.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram()
  const verbose = argv.includes('--verbose')
  const json = argv.includes('--json')
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander already printed the usage error.
      if (err.exitCode === 0) return 0
      if (json)
        reportError(new InvalidArgumentError(err.message.replace(/^error: /, '')), { verbose: false, json })
      return 2
    }
    return reportError(err, { verbose, json })
  }
}
