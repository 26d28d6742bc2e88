import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { chainError } from '../../chain/errors.js'
import { type DeployParameters, deployNetwork, probeChainId, writeNetworkFile } from '../../chain/index.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { globalOptions, resolvePrivateKey } from '../context.js'
import { createOutput } from '../output.js'
import { parseAddress, parsePositiveInt, parseRpcUrl } from '../parse.js'

interface Options {
  rpc: string
  out: string
  force?: boolean
  name?: string
  preset?: string
  keyFile?: string
  treasury?: string
  epochSeconds?: string
  quorum?: string
}

/** `meshwork deploy`: deploys every contract and writes the network file. */
export function deployCommand(program: Command): void {
  program
    .command('deploy')
    .description('deploy the Meshwork contracts to a chain and write the network file')
    .option('--rpc <url>', 'JSON-RPC URL of the chain', 'http://127.0.0.1:8545')
    .option('--out <file>', 'network file to write', 'network.json')
    .option('--force', 'replace an existing network file')
    .option('--name <name>', 'network name recorded in the file')
    .option('--preset <preset>', 'parameter defaults: devnet or production (default: devnet on chain 31337)')
    .option(
      '--key-file <file>',
      'file holding the deployer private key (default: $MESHWORK_PRIVATE_KEY; dev account 0 on the dev chain)',
    )
    .option('--treasury <address>', 'treasury address (default: the deployer)')
    .option('--epoch-seconds <n>', 'epoch length in seconds')
    .option('--quorum <m>', 'verifier signatures needed for a root or a slash')
    .action(async (opts: Options, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const rpcUrl = parseRpcUrl(opts.rpc)
      if (opts.preset !== undefined && opts.preset !== 'devnet' && opts.preset !== 'production') {
        throw new InvalidArgumentError(`--preset must be devnet or production, got "${opts.preset}"`)
      }
      // Refuse before spending gas.
      if (existsSync(opts.out) && !opts.force) {
        throw chainError('NETWORK_FILE_EXISTS', `network file ${opts.out} already exists`, {
          hint: 'Pass --force to replace it, or --out another file',
        })
      }
      const overrides: Partial<DeployParameters> = {}
      if (opts.treasury) overrides.treasury = parseAddress(opts.treasury, '--treasury')
      if (opts.epochSeconds)
        overrides.epochDuration = parsePositiveInt(opts.epochSeconds, '--epoch-seconds', 31_536_000)
      if (opts.quorum) overrides.quorum = parsePositiveInt(opts.quorum, '--quorum', 1_000)

      out.step(`connecting to ${rpcUrl}`)
      const chainId = await probeChainId(rpcUrl)
      const { key, source } = resolvePrivateKey({
        ...(opts.keyFile ? { keyFile: opts.keyFile } : {}),
        chainId,
      })
      out.step(`deploying with ${source}`)
      const network = await deployNetwork({
        rpcUrl,
        privateKey: key,
        overrides,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.preset ? { preset: opts.preset as 'devnet' | 'production' } : {}),
        onStep: (step, i, n) => out.step(step, i, n),
      })
      writeNetworkFile(opts.out, network, { force: opts.force === true })
      out.json(network)
      out.info(`Deployed to chain ${network.chainId} at block ${network.deployBlock}; wrote ${opts.out}`)
      for (const [name, address] of Object.entries(network.contracts))
        out.info(`  ${name.padEnd(13)} ${address}`)
    })
}
