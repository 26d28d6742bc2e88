import type { Command } from 'commander'
import { formatUnits, parseUnits } from 'viem'
import { connectChain, registerNode, SERVICES, type ServiceName, servicesMask } from '../../chain/index.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { peerIdBytes } from '../../mesh/peer-key.js'
import { DEFAULT_NODE_DIR, loadNodeDir } from '../../node/node-dir.js'
import { globalOptions, resolvePrivateKey } from '../context.js'
import { createOutput } from '../output.js'
import { parseRpcUrl } from '../parse.js'

interface Options {
  dir: string
  stake: string
  services?: string
  keyFile?: string
  rpc?: string
}

/** `meshwork node register`: bonds stake for this node in NodeRegistry. */
export function nodeRegisterCommand(node: Command): void {
  node
    .command('register')
    .description('register this node in NodeRegistry with a stake (in MESH)')
    .requiredOption('--stake <amount>', 'stake in MESH, e.g. 1000 or 1500.5')
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .option(
      '--services <list>',
      `offered services, comma-separated (${Object.keys(SERVICES).join(', ')})`,
      '',
    )
    .option('--key-file <file>', "sign with this key instead of the node's operator.key")
    .option('--rpc <url>', "JSON-RPC URL (default: the network file's)")
    .action(async (opts: Options, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const { identity, config, network } = loadNodeDir(opts.dir)
      if (!/^\d{1,12}(\.\d{1,18})?$/.test(opts.stake)) {
        throw new InvalidArgumentError(
          `--stake must be an amount of MESH such as 1000 or 1500.5, got "${opts.stake}"`,
        )
      }
      const stake = parseUnits(opts.stake, 18)
      const names = (opts.services ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      for (const n of names) {
        if (!(n in SERVICES))
          throw new InvalidArgumentError(`unknown service "${n}"`, {
            hint: `Use ${Object.keys(SERVICES).join(', ')}`,
          })
      }
      const key =
        opts.keyFile || !identity.operatorKey
          ? resolvePrivateKey({
              ...(opts.keyFile ? { keyFile: opts.keyFile } : {}),
              chainId: network.chainId,
            }).key
          : identity.operatorKey
      const client = await connectChain({
        chainId: network.chainId,
        contracts: network.contracts,
        rpc: opts.rpc ? parseRpcUrl(opts.rpc) : config.chain.rpc || network.rpcUrl,
        privateKey: key,
      })
      out.step(`registering ${identity.peerId} with ${formatUnits(stake, 18)} MESH`)
      const tx = await registerNode(client, {
        peerId: peerIdBytes(identity.peerId),
        services: servicesMask(names as ServiceName[]),
        h3Cell: BigInt(`0x${config.node.h3Cell}`),
        stake,
      })
      out.json({ nodeId: tx.nodeId, tx: tx.hash, stake: stake.toString() })
      out.info(`Registered node ${identity.peerId} (node id ${tx.nodeId}) in tx ${tx.hash}`)
    })
}
