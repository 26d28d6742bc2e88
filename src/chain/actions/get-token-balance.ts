import { meshTokenAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** An account's MESH balance in base units. */
export function getTokenBalance(client: ChainReader, account: `0x${string}`): Promise<bigint> {
  return readContract<bigint>(client, {
    address: client.contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'balanceOf',
    args: [account],
  })
}
