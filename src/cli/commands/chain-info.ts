import type { Command } from 'commander'
import { formatUnits } from 'viem'
import {
  epochRewardsAbi,
  getEpochState,
  meshTokenAbi,
  nodeRegistryAbi,
  readContract,
} from '../../chain/index.js'
import { globalOptions } from '../context.js'
import { DEFAULT_NETWORK_FILE, type NetworkFlags, openNetwork } from '../network-option.js'
import { createOutput } from '../output.js'

/** `meshwork chain info`: what is deployed where, and where the epochs stand. */
export function chainInfoCommand(chain: Command): void {
  chain
    .command('info')
    .description('show the network: chain, contracts, token supply, epochs and verifier set')
    .option('--network <file>', 'network file', DEFAULT_NETWORK_FILE)
    .option('--rpc <url>', 'JSON-RPC URL (default: the one in the network file)')
    .action(async (opts: NetworkFlags, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const { network, reader, rpcUrl } = await openNetwork(opts)
      const read = <T>(address: `0x${string}`, abi: never, functionName: string) =>
        readContract<T>(reader, { address, abi, functionName, args: [] })
      const [block, epochs, supply, emitted, verifiers, quorum] = await Promise.all([
        reader.public.getBlockNumber(),
        getEpochState(reader),
        read<bigint>(network.contracts.MeshToken, meshTokenAbi as never, 'totalSupply'),
        read<bigint>(network.contracts.EpochRewards, epochRewardsAbi as never, 'totalEmission'),
        read<number>(network.contracts.NodeRegistry, nodeRegistryAbi as never, 'verifierCount'),
        read<number>(network.contracts.NodeRegistry, nodeRegistryAbi as never, 'quorum'),
      ])
      const info = {
        name: network.name,
        chainId: network.chainId,
        rpcUrl,
        block,
        contracts: network.contracts,
        totalSupply: supply,
        maxSupply: BigInt(network.parameters.maxSupply),
        totalEmission: emitted,
        epoch: epochs,
        verifiers,
        quorum,
      }
      out.json(info)
      const mesh = (v: bigint) => `${formatUnits(v, 18)} ${network.parameters.tokenSymbol}`
      out.info(`${network.name}: chain ${network.chainId} at block ${block} (${rpcUrl})`)
      for (const [name, address] of Object.entries(network.contracts))
        out.info(`  ${name.padEnd(13)} ${address}`)
      out.info(`  supply        ${mesh(supply)} of ${mesh(info.maxSupply)}`)
      out.info(
        `  epochs        now ${epochs.currentEpoch}, next to post ${epochs.nextEpoch}, claimable ${epochs.claimableRoot === `0x${'0'.repeat(64)}` ? 'none yet' : `epoch ${epochs.claimableEpoch}`}`,
      )
      out.info(`  verifiers     ${verifiers} registered, quorum ${quorum}`)
    })
}
