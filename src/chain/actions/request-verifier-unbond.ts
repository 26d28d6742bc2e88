import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Starts unbonding `amount` of the client's verifier stake. */
export function requestVerifierUnbond(client: ChainClient, amount: bigint): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'requestVerifierUnbond',
    args: [amount],
  })
}
