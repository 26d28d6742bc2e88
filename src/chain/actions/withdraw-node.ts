import type { Hex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Pays a node's unbonded stake to its operator once the unbonding period is over. */
export function withdrawNode(client: ChainClient, nodeId: Hex): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'withdrawNode',
    args: [nodeId],
  })
}
