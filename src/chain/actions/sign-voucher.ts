import type { LocalAccount } from 'viem'
import type { ChainReader } from '../client.js'
import { contractDomain, type SignedBy, signMessageOf } from '../typed-data.js'

/** Signs a cumulative payment voucher for a channel, as its builder. */
export function signVoucher(
  client: Pick<ChainReader, 'contracts' | 'chainId'>,
  account: Pick<LocalAccount, 'address' | 'signTypedData'>,
  voucher: { channelId: bigint; cumulativeAmount: bigint },
): Promise<SignedBy> {
  return signMessageOf(
    account,
    contractDomain('Payments', client.chainId, client.contracts.Payments),
    'Voucher',
    voucher,
  )
}
