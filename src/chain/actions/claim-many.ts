import { epochRewardsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import type { ClaimParameters } from './claim.js'

/** Claims for a fleet of accounts in one transaction. */
export function claimMany(client: ChainClient, claims: readonly ClaimParameters[]): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: 'claimMany',
    args: [claims.map((c) => c.account), claims.map((c) => c.cumulativeAmount), claims.map((c) => c.proof)],
  })
}
