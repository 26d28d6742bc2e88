import type { Hex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { packSignatures, type SignedBy } from '../typed-data.js'

/** What {@link slashNode} submits. */
export interface SlashNodeParameters {
  nodeId: Hex
  amount: bigint
  /** Hash of the published evidence; each hash slashes once. */
  evidenceHash: Hex
  /** EIP-712 `SlashNode` signatures of at least a quorum of active verifiers, in any order. */
  signatures: readonly SignedBy[]
}

/** Slashes a node's stake to the treasury with a verifier quorum's signatures. */
export function slashNode(client: ChainClient, params: SlashNodeParameters): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'slashNode',
    args: [params.nodeId, params.amount, params.evidenceHash, packSignatures(params.signatures)],
  })
}
