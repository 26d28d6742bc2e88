import type { Hex } from 'viem'
import { epochRewardsAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** Where the reward epochs stand on chain. */
export interface EpochState {
  /** The epoch the chain's clock is in. */
  currentEpoch: bigint
  /** The next epoch a root may be posted for. */
  nextEpoch: bigint
  /** The root claims are proven against now (zero when none), and its epoch. */
  claimableRoot: Hex
  claimableEpoch: bigint
  /** Tokens minted into EpochRewards so far: the newest standing root's cumulative total. */
  totalMinted: bigint
  /** Roots revoked so far; every PostRoot and RevokeRoot signature includes it. */
  revocations: number
}

/** Reads the epoch state of EpochRewards. */
export async function getEpochState(client: ChainReader): Promise<EpochState> {
  const call = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(client, {
      address: client.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName,
      args,
    })
  const [currentEpoch, nextEpoch, claimable, totalMinted, revocations] = await Promise.all([
    call<bigint>('currentEpoch'),
    call<bigint>('nextEpoch'),
    call<readonly [Hex, bigint, bigint]>('claimableRoot'),
    call<bigint>('totalMinted'),
    call<number>('revocations'),
  ])
  return {
    currentEpoch,
    nextEpoch,
    claimableRoot: claimable[0],
    claimableEpoch: claimable[1],
    totalMinted,
    revocations,
  }
}
