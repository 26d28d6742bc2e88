import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import {
  connectChain,
  deployNetwork,
  devAccounts,
  type NetworkFile,
  readNetworkFile,
  startDevChain,
  writeNetworkFile,
} from '../../chain/index.js'
import { createLogger } from '../../core/logger.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { parsePort, parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

interface Options {
  port: string
  dir: string
  epochSeconds: string
  resume?: boolean
}

/**
 * `meshwork devnet`: the whole local network in one command. Today it starts the embedded chain,
 * deploys the contracts and writes DIR/network.json; the node, verifier and dashboard issues grow it.
 */
export function devnetCommand(program: Command): void {
  program
    .command('devnet')
    .description('start a local Meshwork network: embedded chain and contracts (Ctrl-C stops it)')
    .option('--port <port>', 'JSON-RPC port of the chain', '8545')
    .option('--dir <dir>', 'directory for the chain state and network.json', '.meshwork/devnet')
    .option('--epoch-seconds <n>', 'epoch length in seconds', '15')
    .option('--resume', 'continue from the state in --dir instead of starting fresh')
    .action(async (opts: Options, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const port = parsePort(opts.port)
      const epochDuration = parsePositiveInt(opts.epochSeconds, '--epoch-seconds', 86_400)
      const chainDir = join(opts.dir, 'chain')
      const networkPath = join(opts.dir, 'network.json')
      if (!opts.resume && (existsSync(chainDir) || existsSync(networkPath))) {
        out.step(`starting fresh: removing the previous devnet in ${opts.dir} (--resume continues it)`)
        rmSync(chainDir, { recursive: true, force: true })
        rmSync(networkPath, { force: true })
      }
      mkdirSync(opts.dir, { recursive: true })
      const logger = createLogger({ level: g.verbose ? 'debug' : 'warn' })

      out.step(opts.resume ? `resuming the chain from ${chainDir}` : 'starting the embedded chain', 1, 3)
      const chain = await startDevChain({ port, stateDir: chainDir, logger })
      try {
        const url = chain.url as string
        let network: NetworkFile | undefined
        if (opts.resume && existsSync(networkPath)) {
          network = readNetworkFile(networkPath)
          await connectChain({ chainId: network.chainId, contracts: network.contracts, rpc: chain.provider })
          if (network.rpcUrl !== url) {
            network = { ...network, rpcUrl: url }
            writeNetworkFile(networkPath, network, { force: true })
          }
          out.step(`reusing the contracts in ${networkPath}`, 2, 3)
        } else {
          out.step('deploying the contracts', 2, 3)
          network = await deployNetwork({
            rpcUrl: url,
            provider: chain.provider,
            privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
            preset: 'devnet',
            overrides: { epochDuration },
            onStep: (step) => logger.debug({ step }, 'deploy step'),
          })
          writeNetworkFile(networkPath, network, { force: true })
        }
        out.step(`wrote ${networkPath}`, 3, 3)
        out.json({
          ready: true,
          rpcUrl: url,
          chainId: network.chainId,
          networkFile: networkPath,
          contracts: network.contracts,
        })
        out.info(`Meshwork devnet ready: ${url}`)
        out.info(
          `  chain ${network.chainId}, epochs of ${network.parameters.epochDuration} s, network file ${networkPath}`,
        )
        out.info(`  try: npx meshwork chain info --network ${networkPath}`)
        const signal = await waitForShutdown()
        out.step(`stopping (${signal})`)
      } finally {
        await chain.stop()
      }
    })
}
