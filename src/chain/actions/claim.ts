import type { Hex } from 'viem'
import { epochRewardsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** One account's leaf in the cumulative reward tree, with its proof. */
export interface ClaimParameters {
  account: `0x${string}`
  cumulativeAmount: bigint
  proof: readonly Hex[]
}

/** Claims what `account` earned since its last claim; the tokens go to `account`. */
export function claim(client: ChainClient, params: ClaimParameters): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: 'claim',
    args: [params.account, params.cumulativeAmount, params.proof],
  })
}
