import { paymentsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Refunds what is left in a channel to its builder after the close timeout, and closes it. */
export function withdrawChannel(client: ChainClient, channelId: bigint): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'withdraw',
    args: [channelId],
  })
}
