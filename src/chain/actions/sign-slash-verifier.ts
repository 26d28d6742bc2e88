import type { LocalAccount } from 'viem'
import type { ChainReader } from '../client.js'
import { contractDomain, type Messages, type SignedBy, signMessageOf } from '../typed-data.js'

/** Signs a `SlashVerifier` message as a verifier (EIP-712, bound to this chain and NodeRegistry). */
export function signSlashVerifier(
  client: Pick<ChainReader, 'contracts' | 'chainId'>,
  account: Pick<LocalAccount, 'address' | 'signTypedData'>,
  message: Messages['SlashVerifier'],
): Promise<SignedBy> {
  return signMessageOf(
    account,
    contractDomain('NodeRegistry', client.chainId, client.contracts.NodeRegistry),
    'SlashVerifier',
    message,
  )
}
