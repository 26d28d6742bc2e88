import type { LocalAccount } from 'viem'
import type { ChainReader } from '../client.js'
import { contractDomain, type Messages, type SignedBy, signMessageOf } from '../typed-data.js'

/** Signs a `RevokeRoot` message as a verifier (EIP-712, bound to this chain and EpochRewards). */
export function signRevokeRoot(
  client: Pick<ChainReader, 'contracts' | 'chainId'>,
  account: Pick<LocalAccount, 'address' | 'signTypedData'>,
  message: Messages['RevokeRoot'],
): Promise<SignedBy> {
  return signMessageOf(
    account,
    contractDomain('EpochRewards', client.chainId, client.contracts.EpochRewards),
    'RevokeRoot',
    message,
  )
}
