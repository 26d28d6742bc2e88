import { meshGovernorAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import type { ProposalRecord } from './list-proposals.js'
import { descriptionHash } from './propose.js'

/**
 * Executes a queued proposal whose timelock delay has passed (anyone may): the timelock makes its
 * calls. Before the delay it reverts with GOV_TIMELOCK_NOT_READY; a call that reverts (a value the
 * contract refuses) reverts the whole proposal with that call's error.
 */
export function executeProposal(
  client: ChainClient,
  proposal: Pick<ProposalRecord, 'calls' | 'description'>,
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.MeshGovernor,
    abi: meshGovernorAbi,
    functionName: 'execute',
    args: [
      proposal.calls.map((c) => c.target),
      proposal.calls.map((c) => c.value ?? 0n),
      proposal.calls.map((c) => c.data),
      descriptionHash(proposal.description),
    ],
  })
}
