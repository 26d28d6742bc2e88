import { type Hex, parseAbiItem } from 'viem'
import type { ChainReader } from '../client.js'
import { chainError } from '../errors.js'
import type { GovernanceCall } from './propose.js'

/** A proposal as its `ProposalCreated` event describes it. */
export interface ProposalRecord {
  proposalId: bigint
  proposer: `0x${string}`
  calls: GovernanceCall[]
  description: string
  /** The clock time (seconds) votes are counted at; voting opens just after it. */
  voteStart: bigint
  /** The last second of the vote. */
  voteEnd: bigint
  blockNumber: bigint
  transactionHash: Hex
}

const PROPOSAL_CREATED = parseAbiItem(
  'event ProposalCreated(uint256 proposalId, address proposer, address[] targets, uint256[] values, string[] signatures, bytes[] calldatas, uint256 voteStart, uint256 voteEnd, string description)',
)

/** Lists every proposal made to MeshGovernor since `fromBlock` (the deploy block), oldest first. */
export async function listProposals(
  client: ChainReader,
  options: { fromBlock: bigint },
): Promise<ProposalRecord[]> {
  const logs = await client.public.getLogs({
    address: client.contracts.MeshGovernor,
    event: PROPOSAL_CREATED,
    fromBlock: options.fromBlock,
    toBlock: 'latest',
    strict: true,
  })
  return logs.map((log) => {
    const a = log.args
    return {
      proposalId: a.proposalId,
      proposer: a.proposer,
      calls: a.targets.map((target, i) => ({
        target,
        value: a.values[i] ?? 0n,
        data: a.calldatas[i] ?? '0x',
      })),
      description: a.description,
      voteStart: a.voteStart,
      voteEnd: a.voteEnd,
      blockNumber: log.blockNumber,
      transactionHash: log.transactionHash,
    }
  })
}

/** Finds one proposal by id among {@link listProposals}; GOV_PROPOSAL_UNKNOWN when there is none. */
export async function findProposal(
  client: ChainReader,
  options: { fromBlock: bigint; proposalId: bigint },
): Promise<ProposalRecord> {
  const found = (await listProposals(client, options)).find((p) => p.proposalId === options.proposalId)
  if (!found) {
    throw chainError('GOV_PROPOSAL_UNKNOWN', `there is no proposal ${options.proposalId}`, {
      hint: 'List proposals with `meshwork gov list`',
    })
  }
  return found
}
