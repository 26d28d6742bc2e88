import type { Hex } from 'viem'
import { DEFAULT_REWARD_PARAMS, type RewardParams } from '../rewards/reward-function.js'
import { makerPeerIdOf } from './maker-key.js'

/**
 * One parameter set exactly as NetworkParams stores it (`NetworkParams.Params`, in the contract's
 * field order). Weights are basis points summing to 10,000; ppm values are parts per million.
 */
export interface NetworkParamsStruct {
  uptimeWeightBps: number
  computeWeightBps: number
  storageWeightBps: number
  relayWeightBps: number
  sensorWeightBps: number
  uptimeThresholdPpm: number
  stakeCap: bigint
  cellStakeCap: bigint
  vettingEpochs: number
  vettingFactorBps: number
  sensorCellCapacity: number
  computeVerifyMinPpm: number
  computeVerifyMaxPpm: number
  workRebateBps: number
  /** The share of a node's uptime weight linear in its stake, basis points (`hardware.linearBps`). */
  linearBps: number
}

/** A version of the parameter set and its maker list, and the epoch it applies from. */
export interface NetworkParamsVersion {
  /** 1 for the deploy's set, one more for each change. */
  version: number
  /** The first epoch this version is in force. */
  fromEpoch: bigint
  params: NetworkParamsStruct
  /**
   * The approved hardware makers (NetworkParams' `makersOf(version)`): raw 32-byte Ed25519 public
   * keys, ascending; {@link makerPeerIdOf} names each as a peer id.
   */
  makers: readonly Hex[]
}

/** The share of uptime weight linear in stake that NetworkParams starts with, when the reward defaults name none. */
const DEFAULT_LINEAR_BPS = 5_000

/**
 * The set NetworkParams starts with (version 1): the reward function's {@link DEFAULT_REWARD_PARAMS},
 * plus the sensor capacity per H3 cell and the bounds of the compute re-run probability (5% to 100%,
 * as `verificationProbability` in src/compute/verification.ts uses them). Its maker list is the
 * deploy's (`DeployInit.makers`, none by default).
 */
export const INITIAL_NETWORK_PARAMS: Readonly<NetworkParamsStruct> = Object.freeze({
  uptimeWeightBps: DEFAULT_REWARD_PARAMS.serviceWeightsBps.uptime,
  computeWeightBps: DEFAULT_REWARD_PARAMS.serviceWeightsBps.compute,
  storageWeightBps: DEFAULT_REWARD_PARAMS.serviceWeightsBps.storage,
  relayWeightBps: DEFAULT_REWARD_PARAMS.serviceWeightsBps.relay,
  sensorWeightBps: DEFAULT_REWARD_PARAMS.serviceWeightsBps.sensor,
  uptimeThresholdPpm: DEFAULT_REWARD_PARAMS.uptime.thresholdPpm,
  stakeCap: DEFAULT_REWARD_PARAMS.uptime.stakeCap,
  cellStakeCap: DEFAULT_REWARD_PARAMS.uptime.cellStakeCap as bigint,
  vettingEpochs: DEFAULT_REWARD_PARAMS.uptime.vettingEpochs,
  vettingFactorBps: DEFAULT_REWARD_PARAMS.uptime.vettingFactorBps,
  sensorCellCapacity: DEFAULT_REWARD_PARAMS.sensor.cellCapacity,
  computeVerifyMinPpm: 50_000,
  computeVerifyMaxPpm: 1_000_000,
  workRebateBps: DEFAULT_REWARD_PARAMS.work?.rebateBps as number,
  linearBps: DEFAULT_REWARD_PARAMS.hardware?.linearBps ?? DEFAULT_LINEAR_BPS,
})

/**
 * The reward function's view of an on-chain version (the reward function reads the weights, the
 * uptime rules, the sensor capacity per cell and the hardware group, makers as peer ids; the compute
 * bounds are for the services).
 */
export function toRewardParams(v: Pick<NetworkParamsVersion, 'version' | 'params' | 'makers'>): RewardParams {
  const p = v.params
  return {
    version: v.version,
    serviceWeightsBps: {
      uptime: p.uptimeWeightBps,
      compute: p.computeWeightBps,
      storage: p.storageWeightBps,
      relay: p.relayWeightBps,
      sensor: p.sensorWeightBps,
    },
    uptime: {
      thresholdPpm: p.uptimeThresholdPpm,
      stakeCap: p.stakeCap,
      cellStakeCap: p.cellStakeCap,
      vettingEpochs: p.vettingEpochs,
      vettingFactorBps: p.vettingFactorBps,
    },
    sensor: { cellCapacity: p.sensorCellCapacity },
    hardware: { makers: v.makers.map(makerPeerIdOf), linearBps: p.linearBps },
    work: { rebateBps: p.workRebateBps },
  }
}
