import { paymentsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Starts a channel's close timeout, as its builder. */
export function requestChannelClose(client: ChainClient, channelId: bigint): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'requestClose',
    args: [channelId],
  })
}
