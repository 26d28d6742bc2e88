import { meshTokenAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** An account's voting power and where its own tokens' votes go. */
export interface VotingPower {
  /** Votes delegated to the account (by itself or others), base units. */
  votes: bigint
  /** The account its own tokens are delegated to; the zero address when it has not delegated. */
  delegate: `0x${string}`
  /** Its MESH balance. */
  balance: bigint
}

/** Reads an account's votes, delegate and balance from MeshToken. */
export async function getVotes(client: ChainReader, account: `0x${string}`): Promise<VotingPower> {
  const call = <T>(functionName: string) =>
    readContract<T>(client, {
      address: client.contracts.MeshToken,
      abi: meshTokenAbi,
      functionName,
      args: [account],
    })
  const [votes, delegate, balance] = await Promise.all([
    call<bigint>('getVotes'),
    call<`0x${string}`>('delegates'),
    call<bigint>('balanceOf'),
  ])
  return { votes, delegate, balance }
}
