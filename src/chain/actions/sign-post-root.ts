import type { LocalAccount } from 'viem'
import type { ChainReader } from '../client.js'
import { contractDomain, type Messages, type SignedBy, signMessageOf } from '../typed-data.js'

/** Signs an epoch's `PostRoot` message as a verifier (EIP-712, bound to this chain and EpochRewards). */
export function signPostRoot(
  client: Pick<ChainReader, 'contracts' | 'chainId'>,
  account: Pick<LocalAccount, 'address' | 'signTypedData'>,
  message: Messages['PostRoot'],
): Promise<SignedBy> {
  return signMessageOf(
    account,
    contractDomain('EpochRewards', client.chainId, client.contracts.EpochRewards),
    'PostRoot',
    message,
  )
}
