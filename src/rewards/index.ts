export {
  addPayouts,
  buildCumulativeTree,
  type CumulativeEntry,
  type CumulativeTree,
  type LeafProof,
  leafHash,
  lowerAddress,
} from './cumulative-tree.js'
export {
  type EmissionSchedule,
  emissionOf,
  emittedBefore,
  emittedThrough,
  totalEmission,
} from './emission.js'
export { AccountAmounts, KeyIndex } from './key-index.js'
export {
  type BandwidthExplanation,
  type BandwidthObservation,
  BPS,
  type ComputeExplanation,
  type ComputeObservation,
  computeEpochRewards,
  DEFAULT_REWARD_PARAMS,
  type EpochRewards,
  PPM,
  REWARD_SERVICES,
  type RewardInput,
  type RewardNode,
  type RewardParams,
  type RewardService,
  rebateCapOf,
  type StorageExplanation,
  type StorageObservation,
  type UptimeExplanation,
  type UptimeObservation,
  validateRewardParams,
} from './reward-function.js'
