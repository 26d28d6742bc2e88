import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { ensureAllowance } from './ensure-allowance.js'

/** Adds `amount` MESH to the client's verifier stake, approving it first when needed. */
export async function addVerifierStake(client: ChainClient, amount: bigint): Promise<TxResult> {
  await ensureAllowance(client, client.contracts.NodeRegistry, amount)
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'addVerifierStake',
    args: [amount],
  })
}
