import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'

/** Pays the client's unbonded verifier stake back once the unbonding period is over. */
export function withdrawVerifier(client: ChainClient): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'withdrawVerifier',
    args: [],
  })
}
