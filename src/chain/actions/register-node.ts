import { type Hex, keccak256, toHex, zeroHash } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { ensureAllowance } from './ensure-allowance.js'

/** What {@link registerNode} registers. */
export interface RegisterNodeParameters {
  /** The node's libp2p peer id as bytes (or hex). */
  peerId: Uint8Array | Hex
  /** Bitmask of offered services: see {@link SERVICES}. */
  services: number
  /** The node's H3 cell index. */
  h3Cell: bigint
  /** Hash of the node's off-chain metadata; zero when none. */
  metadataHash?: Hex
  /** Stake in MESH base units; at least the registry's minimum. */
  stake: bigint
}

/** The on-chain id of a node: keccak256 of its peer id bytes. */
export function nodeIdOf(peerId: Uint8Array | Hex): Hex {
  return keccak256(typeof peerId === 'string' ? peerId : toHex(peerId))
}

/**
 * Registers a node in NodeRegistry for the client's account (its operator), approving the stake
 * first when needed.
 */
export async function registerNode(
  client: ChainClient,
  params: RegisterNodeParameters,
): Promise<TxResult & { nodeId: Hex }> {
  await ensureAllowance(client, client.contracts.NodeRegistry, params.stake)
  const peerId = typeof params.peerId === 'string' ? params.peerId : toHex(params.peerId)
  const tx = await sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'registerNode',
    args: [peerId, params.services, params.h3Cell, params.metadataHash ?? zeroHash, params.stake],
  })
  return { ...tx, nodeId: nodeIdOf(peerId) }
}
