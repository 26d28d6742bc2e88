import { meshTokenAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Sends `amount` MESH (base units) from the client's account to `to`. */
export function transferTokens(client: ChainClient, to: `0x${string}`, amount: bigint): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'transfer',
    args: [to, amount],
  })
}
