import { meshGovernorAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { PROPOSAL_STATES, type ProposalStateName } from '../errors.js'
import { readContract } from '../transact.js'

/** Where a proposal stands, read from MeshGovernor. */
export interface ProposalStatus {
  proposalId: bigint
  state: ProposalStateName
  /** The clock time (seconds) votes are counted at; voting opens the second after. */
  snapshot: bigint
  /** The last second of the vote. */
  deadline: bigint
  /** When a queued proposal becomes executable (0 until it is queued). */
  eta: bigint
  votes: { against: bigint; for: bigint; abstain: bigint }
  /** Votes (for + abstain) needed; undefined while the snapshot is still in the future. */
  quorum: bigint | undefined
  /** The chain's clock now (the latest block's timestamp). */
  now: bigint
}

/** Reads a proposal's state, times, votes and quorum; GOV_PROPOSAL_UNKNOWN when there is none. */
export async function getProposal(client: ChainReader, proposalId: bigint): Promise<ProposalStatus> {
  const call = <T>(functionName: string, args: readonly unknown[] = [proposalId]) =>
    readContract<T>(client, {
      address: client.contracts.MeshGovernor,
      abi: meshGovernorAbi,
      functionName,
      args,
    })
  const state = await call<number>('state')
  const [snapshot, deadline, eta, votes, now] = await Promise.all([
    call<bigint>('proposalSnapshot'),
    call<bigint>('proposalDeadline'),
    call<bigint>('proposalEta'),
    call<readonly [bigint, bigint, bigint]>('proposalVotes'),
    call<number>('clock', []),
  ])
  const quorum = snapshot < BigInt(now) ? await call<bigint>('quorum', [snapshot]) : undefined
  return {
    proposalId,
    state: PROPOSAL_STATES[state] ?? 'pending',
    snapshot,
    deadline,
    eta,
    votes: { against: votes[0], for: votes[1], abstain: votes[2] },
    quorum,
    now: BigInt(now),
  }
}
