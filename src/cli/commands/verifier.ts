import { copyFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { formatUnits, parseEther, parseUnits } from 'viem'
import { connectChain, devAccounts, registerVerifier, transferTokens } from '../../chain/index.js'
import { readNetworkFile } from '../../chain/network-file.js'
import { systemClock } from '../../core/clock.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { peerIdBytes } from '../../mesh/peer-key.js'
import { initVerifierDir, loadVerifierDir } from '../../verifier/verifier-dir.js'
import { startVerifierService } from '../../verifier/verifier-service.js'
import { DEV_CHAIN_ID, globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { parseRpcUrl } from '../parse.js'
import { stopWithin, waitForShutdown } from '../signals.js'

/** Where a verifier keeps its files unless --dir says otherwise. */
const DEFAULT_VERIFIER_DIR = '.meshwork/verifier'

/** `meshwork verifier init|register|start`: run a staked verifier. */
export function verifierCommands(program: Command): Command {
  const verifier = program
    .command('verifier')
    .description('a staked verifier: measures nodes, closes epochs and posts reward roots')

  verifier
    .command('init')
    .description('create a verifier: libp2p identity, operator key, commented config and SQLite store')
    .option('--dir <dir>', 'verifier directory', DEFAULT_VERIFIER_DIR)
    .option('--network <file>', 'copy this network file into the verifier directory')
    .option('--api-listen <host:port>', 'metrics, status and bundles endpoint', '127.0.0.1:9470')
    .option('--listen <multiaddr...>', 'mesh listen addresses (default TCP 4011)')
    .action(async (opts: { dir: string; network?: string; apiListen: string; listen?: string[] }, cmd) => {
      const out = createOutput(globalOptions(cmd))
      if (opts.network) readNetworkFile(opts.network)
      const dir = resolve(opts.dir)
      const identity = await initVerifierDir({
        dir,
        apiListen: opts.apiListen,
        ...(opts.listen ? { listen: opts.listen } : {}),
      })
      if (opts.network) copyFileSync(opts.network, join(dir, 'network.json'))
      out.json({ dir, peerId: identity.peerId, address: identity.address })
      out.info(`Created verifier ${identity.peerId} in ${dir}`)
      out.info(
        `  address   ${identity.address} (key in operator.key: fund it with ETH for gas and MESH to stake)`,
      )
      if (!opts.network && !existsSync(join(dir, 'network.json')))
        out.info(`  next: copy the network file to ${join(dir, 'network.json')} (or pass --network FILE)`)
      out.info(
        `  next: npx meshwork verifier register --dir ${dir} --stake 100000, then npx meshwork verifier start --dir ${dir}`,
      )
    })

  verifier
    .command('register')
    .description("stake this verifier's operator key in NodeRegistry (in MESH)")
    .requiredOption('--stake <amount>', 'stake in MESH, e.g. 100000')
    .option('--dir <dir>', 'verifier directory', DEFAULT_VERIFIER_DIR)
    .option('--fund', 'dev chain only: first send 1 ETH and the stake from dev account 0 (the treasury)')
    .option('--rpc <url>', "JSON-RPC URL (default: the network file's)")
    .action(async (opts: { dir: string; stake: string; fund?: boolean; rpc?: string }, cmd) => {
      const out = createOutput(globalOptions(cmd))
      const { config, identity, network } = loadVerifierDir(opts.dir)
      if (!/^\d{1,12}(\.\d{1,18})?$/.test(opts.stake)) {
        throw new InvalidArgumentError(
          `--stake must be an amount of MESH such as 100000, got "${opts.stake}"`,
        )
      }
      const stake = parseUnits(opts.stake, 18)
      const rpc = opts.rpc ? parseRpcUrl(opts.rpc) : config.chain.rpc || network.rpcUrl
      if (opts.fund) {
        if (network.chainId !== DEV_CHAIN_ID)
          throw new InvalidArgumentError('--fund works on the dev chain (31337) only', {
            hint: 'Send ETH and MESH to the verifier address yourself',
          })
        const treasury = await connectChain({
          chainId: network.chainId,
          contracts: network.contracts,
          rpc,
          privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
        })
        out.step(`funding ${identity.address} from dev account 0`)
        const hash = await treasury.wallet.sendTransaction({
          to: identity.address,
          value: parseEther('1'),
          chain: treasury.wallet.chain,
          account: treasury.wallet.account,
        })
        await treasury.public.waitForTransactionReceipt({ hash })
        await transferTokens(treasury, identity.address, stake)
      }
      const client = await connectChain({
        chainId: network.chainId,
        contracts: network.contracts,
        rpc,
        privateKey: identity.operatorKey,
      })
      out.step(`registering verifier ${identity.peerId} with ${formatUnits(stake, 18)} MESH`)
      const tx = await registerVerifier(client, { peerId: peerIdBytes(identity.peerId), stake })
      out.json({ address: identity.address, peerId: identity.peerId, tx: tx.hash, stake: stake.toString() })
      out.info(`Registered verifier ${identity.address} (${identity.peerId}) in tx ${tx.hash}`)
    })

  verifier
    .command('start')
    .description('measure nodes, close epochs and post roots (Ctrl-C stops it)')
    .option('--dir <dir>', 'verifier directory', DEFAULT_VERIFIER_DIR)
    .action(async (opts: { dir: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const loaded = loadVerifierDir(resolve(opts.dir))
      const logger = createLogger({ level: g.verbose ? 'debug' : 'info' }).child({
        peerId: loaded.identity.peerId,
      })
      out.step('joining the mesh and the chain')
      const service = await startVerifierService(loaded, { clock: systemClock, logger })
      try {
        out.json({
          ready: true,
          peerId: service.peerId,
          address: service.address,
          addresses: service.addresses(),
          ops: service.opsUrl,
        })
        out.info(`Meshwork verifier ${service.peerId} (${service.address}) running`)
        for (const a of service.addresses()) out.info(`  listening ${a}`)
        out.info(`  metrics   ${service.opsUrl}/metrics   status ${service.opsUrl}/status`)
        out.info(`  bundles   ${service.opsUrl}/bundles/CID   proofs ${service.opsUrl}/proofs/ADDRESS`)
        const signal = await waitForShutdown()
        out.step(`stopping (${signal})`)
      } finally {
        await stopWithin(() => service.stop(), logger)
      }
    })
  return verifier
}
