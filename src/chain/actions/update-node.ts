import { type Hex, zeroHash } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Updates a node's services, H3 cell and metadata hash, as its operator. */
export function updateNode(
  client: ChainClient,
  params: { nodeId: Hex; services: number; h3Cell: bigint; metadataHash?: Hex },
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'updateNode',
    args: [params.nodeId, params.services, params.h3Cell, params.metadataHash ?? zeroHash],
  })
}
