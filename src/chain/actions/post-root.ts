import type { Hex } from 'viem'
import { epochRewardsAbi } from '../abi/index.js'
import type { ChainClient } from '../client.js'
import { sendContractTx, type TxResult } from '../transact.js'
import { packSignatures, type SignedBy } from '../typed-data.js'

/** What {@link postRoot} submits: the EIP-712 `PostRoot` message and its quorum signatures. */
export interface PostRootParameters {
  epoch: bigint
  root: Hex
  /** sha2-256 digest of the epoch's input bundle (its CID is derived from it, docs/rewards.md). */
  bundleDigest: Hex
  totalCumulative: bigint
  /** Signatures of at least a quorum of active verifiers, in any order. */
  signatures: readonly SignedBy[]
}

/** Posts an epoch's cumulative reward root to EpochRewards; anyone may submit it. */
export function postRoot(client: ChainClient, params: PostRootParameters): Promise<TxResult> {
  return sendContractTx(client, {
    address: client.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: 'postRoot',
    args: [
      params.epoch,
      params.root,
      params.bundleDigest,
      params.totalCumulative,
      packSignatures(params.signatures),
    ],
  })
}
