import { decodeEventLog, type Hex, keccak256, toHex } from 'viem'
import { meshGovernorAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { chainError } from '../errors.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** One call a proposal makes through the timelock. */
export interface GovernanceCall {
  target: `0x${string}`
  /** Wei sent with the call; default 0. */
  value?: bigint
  data: Hex
}

/** What {@link propose} submits. */
export interface ProposeParameters {
  calls: readonly GovernanceCall[]
  /** Free text, shown to voters; part of the proposal id, so two proposals differ by it. */
  description: string
}

/**
 * Submits a proposal to MeshGovernor from the client's account (which needs at least the proposal
 * threshold in votes, delegated before this block's time) and returns its id from `ProposalCreated`.
 */
export async function propose(
  client: ChainClient,
  params: ProposeParameters,
): Promise<TxResult & { proposalId: bigint }> {
  const tx = await sendContractTx(client, {
    address: client.contracts.MeshGovernor,
    abi: meshGovernorAbi,
    functionName: 'propose',
    args: [
      params.calls.map((c) => c.target),
      params.calls.map((c) => c.value ?? 0n),
      params.calls.map((c) => c.data),
      params.description,
    ],
  })
  for (const log of tx.receipt.logs) {
    if (log.address.toLowerCase() !== client.contracts.MeshGovernor.toLowerCase()) continue
    try {
      const event = decodeEventLog({ abi: meshGovernorAbi, data: log.data, topics: log.topics })
      if (event.eventName === 'ProposalCreated') return { ...tx, proposalId: event.args.proposalId }
    } catch {
      // another event of the governor
    }
  }
  throw chainError('TX_REVERTED', `propose transaction ${tx.hash} emitted no ProposalCreated event`, {
    details: { hash: tx.hash },
  })
}

/** keccak256 of a proposal's description: what queue and execute take instead of the text. */
export function descriptionHash(description: string): Hex {
  return keccak256(toHex(description))
}
