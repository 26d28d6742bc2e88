import { paymentsAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** A payment channel as Payments holds it; `builder` is the zero address for an unknown id. */
export interface ChannelRecord {
  builder: `0x${string}`
  /** Unix seconds when the builder may withdraw; 0 when no close was asked. */
  closesAt: bigint
  closed: boolean
  provider: `0x${string}`
  deposit: bigint
  redeemed: bigint
}

/** Reads a payment channel by id. */
export function getChannel(client: ChainReader, channelId: bigint): Promise<ChannelRecord> {
  return readContract<ChannelRecord>(client, {
    address: client.contracts.Payments,
    abi: paymentsAbi,
    functionName: 'getChannel',
    args: [channelId],
  })
}
