import type { Hex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** A node's registration as NodeRegistry holds it; `operator` is the zero address when unregistered. */
export interface NodeRecord {
  operator: `0x${string}`
  services: number
  registeredAt: bigint
  h3Cell: bigint
  stake: bigint
  unbondingEndsAt: bigint
  unbonding: bigint
  metadataHash: Hex
}

/** Reads a node's registration by node id (see `nodeIdOf`). */
export function getNode(client: ChainReader, nodeId: Hex): Promise<NodeRecord> {
  return readContract<NodeRecord>(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'getNode',
    args: [nodeId],
  })
}
