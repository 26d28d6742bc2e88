import type { Hex } from 'viem'
import { epochRewardsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { packSignatures, type SignedBy } from '../typed-data.js'

/** Withdraws the newest root inside its dispute window with a quorum's `RevokeRoot` signatures. */
export function revokeRoot(
  client: ChainClient,
  params: { epoch: bigint; root: Hex; signatures: readonly SignedBy[] },
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: 'revokeRoot',
    args: [params.epoch, params.root, packSignatures(params.signatures)],
  })
}
