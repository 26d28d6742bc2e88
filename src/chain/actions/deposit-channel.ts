import { paymentsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { ensureAllowance } from './ensure-allowance.js'

/** Tops up a channel the client's account opened; cancels a pending close. */
export async function depositChannel(
  client: ChainClient,
  channelId: bigint,
  amount: bigint,
): Promise<TxResult> {
  await ensureAllowance(client, client.contracts.Payments, amount)
  return sendContractTx(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'deposit',
    args: [channelId, amount],
  })
}
