import type { Hex } from 'viem'
import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { packSignatures, type SignedBy } from '../typed-data.js'

/** Slashes a verifier's stake to the treasury with the other verifiers' quorum signatures. */
export function slashVerifier(
  client: ChainClient,
  params: { verifier: `0x${string}`; amount: bigint; evidenceHash: Hex; signatures: readonly SignedBy[] },
): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'slashVerifier',
    args: [params.verifier, params.amount, params.evidenceHash, packSignatures(params.signatures)],
  })
}
