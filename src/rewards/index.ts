export {
  buildCumulativeTree,
  type CumulativeEntry,
  type CumulativeTree,
  leafHash,
} from './cumulative-tree.js'
export {
  type EmissionSchedule,
  emissionOf,
  emittedBefore,
  emittedThrough,
  totalEmission,
} from './emission.js'
export {
  BPS,
  computeEpochRewards,
  type EpochRewards,
  PPM,
  REWARD_SERVICES,
  type RewardInput,
  type RewardNode,
  type RewardParams,
  type RewardService,
  type UptimeExplanation,
  type UptimeObservation,
  validateRewardParams,
} from './reward-function.js'
