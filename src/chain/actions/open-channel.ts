import { decodeEventLog } from 'viem'
import { paymentsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { chainError } from '../errors.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { ensureAllowance } from './ensure-allowance.js'

/** Opens a payment channel from the client's account (builder) to `provider` with a deposit. */
export async function openChannel(
  client: ChainClient,
  params: { provider: `0x${string}`; amount: bigint },
): Promise<TxResult & { channelId: bigint }> {
  await ensureAllowance(client, client.contracts.Payments, params.amount)
  const tx = await sendContractTx(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'openChannel',
    args: [params.provider, params.amount],
  })
  for (const log of tx.receipt.logs) {
    if (log.address.toLowerCase() !== client.contracts.Payments.toLowerCase()) continue
    const event = decodeEventLog({ abi: paymentsAbi, data: log.data, topics: log.topics, strict: false })
    if (event.eventName === 'ChannelOpened') return { ...tx, channelId: event.args.channelId as bigint }
  }
  throw chainError('TX_REVERTED', 'openChannel emitted no ChannelOpened event', {
    details: { hash: tx.hash },
  })
}
