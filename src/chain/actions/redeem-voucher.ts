import type { Hex } from 'viem'
import { paymentsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Redeems the latest builder-signed cumulative voucher of a channel; pays its provider the difference. */
export function redeemVoucher(
  client: ChainClient,
  params: { channelId: bigint; cumulativeAmount: bigint; signature: Hex },
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'redeemVoucher',
    args: [params.channelId, params.cumulativeAmount, params.signature],
  })
}
