import { type Hex, toHex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { ensureAllowance } from './ensure-allowance.js'

/** Registers the client's account as a verifier with `stake`, approving it first when needed. */
export async function registerVerifier(
  client: ChainClient,
  params: { peerId: Uint8Array | Hex; stake: bigint },
): Promise<TxResult> {
  await ensureAllowance(client, client.contracts.NodeRegistry, params.stake)
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'registerVerifier',
    args: [typeof params.peerId === 'string' ? params.peerId : toHex(params.peerId), params.stake],
  })
}
