import { meshTokenAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/**
 * Delegates the client's MESH votes to `to` (its own address to vote itself). Tokens vote only once
 * delegated; the delegation follows the balance from then on. Votes count for proposals made after
 * the delegation's block time.
 */
export function delegateVotes(client: ChainClient, to: `0x${string}`): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'delegate',
    args: [to],
  })
}
