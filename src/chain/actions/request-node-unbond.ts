import type { Hex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Starts unbonding `amount` of a node's stake; withdraw it with `withdrawNode` after the period. */
export function requestNodeUnbond(client: ChainClient, nodeId: Hex, amount: bigint): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'requestNodeUnbond',
    args: [nodeId, amount],
  })
}
