import type { Command } from 'commander'
import { DEV_MNEMONIC, startDevChain } from '../../chain/index.js'
import { createLogger } from '../../core/logger.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { parsePort, parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

interface Options {
  port: string
  host: string
  state?: string
  chainId: string
  accounts: string
}

/** `meshwork chain start`: the embedded EVM dev chain behind JSON-RPC on 127.0.0.1. */
export function chainStartCommand(chain: Command): void {
  chain
    .command('start')
    .description('run the embedded EVM dev chain with a JSON-RPC endpoint (Ctrl-C stops it)')
    .option('--port <port>', 'JSON-RPC port (0 picks a free one)', '8545')
    .option('--host <host>', 'address to listen on (keep it on loopback)', '127.0.0.1')
    .option('--state <dir>', 'keep the chain in DIR and continue from it on the next start')
    .option('--chain-id <id>', 'chain id', '31337')
    .option('--accounts <n>', 'funded dev accounts', '20')
    .action(async (opts: Options, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const port = parsePort(opts.port)
      const chainId = parsePositiveInt(opts.chainId, '--chain-id', 2 ** 32)
      const accounts = parsePositiveInt(opts.accounts, '--accounts', 1_000)
      const logger = createLogger({ level: g.verbose ? 'debug' : 'warn' })
      out.step('starting the embedded chain')
      const devChain = await startDevChain({
        port,
        host: opts.host,
        chainId,
        accounts,
        logger,
        ...(opts.state ? { stateDir: opts.state } : {}),
      })
      out.json({
        url: devChain.url,
        chainId,
        accounts: devChain.accounts.map((a) => a.address),
        replayedBlocks: devChain.replayed,
      })
      out.info(`Meshwork dev chain listening: ${devChain.url} (chain id ${chainId})`)
      out.info(`Prometheus metrics: ${devChain.url}/metrics`)
      if (devChain.replayed > 0) out.info(`Resumed from ${opts.state} at block ${devChain.replayed}`)
      out.info(`Funded dev accounts (mnemonic "${DEV_MNEMONIC}"; never use them with real value):`)
      for (const [i, a] of devChain.accounts.slice(0, 5).entries()) out.info(`  #${i} ${a.address}`)
      if (devChain.accounts.length > 5) out.info(`  ... and ${devChain.accounts.length - 5} more`)
      const signal = await waitForShutdown()
      out.step(`stopping (${signal})`)
      await devChain.stop()
    })
}
