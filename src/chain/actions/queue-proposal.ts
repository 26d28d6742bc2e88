import { meshGovernorAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import type { ProposalRecord } from './list-proposals.js'
import { descriptionHash } from './propose.js'

/** Queues a succeeded proposal in the timelock (anyone may); it is executable after the delay. */
export function queueProposal(
  client: ChainClient,
  proposal: Pick<ProposalRecord, 'calls' | 'description'>,
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.MeshGovernor,
    abi: meshGovernorAbi,
    functionName: 'queue',
    args: [
      proposal.calls.map((c) => c.target),
      proposal.calls.map((c) => c.value ?? 0n),
      proposal.calls.map((c) => c.data),
      descriptionHash(proposal.description),
    ],
  })
}
