import { meshTokenAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { readContract, sendContractTx, type TxResult } from '../transact.js'

/** Approves `spender` for `amount` MESH from the client's account unless the allowance already covers it. */
export async function ensureAllowance(
  client: ChainClient,
  spender: `0x${string}`,
  amount: bigint,
): Promise<TxResult | undefined> {
  const owner = client.wallet.account.address
  const current = await readContract<bigint>(client, {
    address: client.contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'allowance',
    args: [owner, spender],
  })
  if (current >= amount) return undefined
  return sendContractTx(client, {
    address: client.contracts.MeshToken,
    abi: meshTokenAbi,
    functionName: 'approve',
    args: [spender, amount],
  })
}
