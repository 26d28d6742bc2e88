import { type ChainReader, connectChain, type NetworkFile, readNetworkFile } from '../chain/index.js'
import { parseRpcUrl } from './parse.js'

/** The `--network` and `--rpc` flags that every command reaching the chain takes. */
export interface NetworkFlags {
  network: string
  rpc?: string
}

/** The default network file. */
export const DEFAULT_NETWORK_FILE = 'network.json'

/**
 * Reads the network file and connects read-only, checking that the chain answers, has the network
 * file's chain id and holds its contracts (one-line errors that name the fix otherwise).
 */
export async function openNetwork(
  flags: NetworkFlags,
): Promise<{ network: NetworkFile; reader: ChainReader; rpcUrl: string }> {
  const network = readNetworkFile(flags.network)
  const rpcUrl = flags.rpc ? parseRpcUrl(flags.rpc) : network.rpcUrl
  const reader = await connectChain({ chainId: network.chainId, contracts: network.contracts, rpc: rpcUrl })
  return { network, reader, rpcUrl }
}
