import { meshGovernorAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** The three ways to vote, as GovernorCountingSimple numbers them. */
export const VOTE_SUPPORT = { against: 0, for: 1, abstain: 2 } as const
export type VoteSupport = keyof typeof VOTE_SUPPORT

/** What {@link castVote} submits. */
export interface CastVoteParameters {
  proposalId: bigint
  support: VoteSupport
  /** Optional reason, recorded in the `VoteCast` event. */
  reason?: string
}

/**
 * Votes on an active proposal with the client's votes at the proposal's snapshot (tokens delegated
 * after it do not count).
 */
export function castVote(client: ChainClient, params: CastVoteParameters): Promise<TxResult> {
  const support = VOTE_SUPPORT[params.support]
  return sendContractTx(client, {
    address: client.contracts.MeshGovernor,
    abi: meshGovernorAbi,
    ...(params.reason
      ? { functionName: 'castVoteWithReason', args: [params.proposalId, support, params.reason] }
      : { functionName: 'castVote', args: [params.proposalId, support] }),
  })
}
