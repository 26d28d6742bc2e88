/**
 * The reward function: what each operator earns in one epoch, from the epoch's observations.
 *
 * Pure and exact: bigint fixed-point only, no floats, no clock, no I/O, and the same output for the
 * same input in any order. Anyone holding an epoch's bundle recomputes its payouts with this module
 * (docs/rewards.md, "The reward function", gives the formula with worked examples).
 */

/** The services that share an epoch's emission, in the order their pools are computed. */
export const REWARD_SERVICES = ['uptime', 'compute', 'storage', 'relay', 'sensor'] as const
export type RewardService = (typeof REWARD_SERVICES)[number]

/** Basis points: 10,000 = 100%. */
export const BPS = 10_000n
/** Parts per million: scores and fractions are integers in [0, PPM]. */
export const PPM = 1_000_000n

/** The governable parameters of the reward function (one version applies to a whole epoch). */
export interface RewardParams {
  /** Which parameter set this is; the bundle records it. */
  version: number
  /** Each service's share of the emission in basis points; they sum to 10,000. */
  serviceWeightsBps: Readonly<Record<RewardService, number>>
  uptime: {
    /** A node whose uptime score is below this (ppm) earns no uptime reward. */
    thresholdPpm: number
    /** Stake above this (base units) adds no weight: stake alone does not buy rewards. */
    stakeCap: bigint
    /** A node registered fewer than this many epochs before the epoch is being vetted. */
    vettingEpochs: number
    /** A node's weight while it is vetted, in basis points of the full weight. */
    vettingFactorBps: number
  }
}

/** A registered node as the epoch saw it (the registry at the epoch's first block). */
export interface RewardNode {
  peerId: string
  operator: `0x${string}`
  stake: bigint
  /** The epoch in which it registered. */
  registeredEpoch: number
}

/** One verifier's uptime measurement of one node in one epoch. */
export interface UptimeObservation {
  /** The observing verifier's peer id. */
  verifier: string
  node: string
  /** Challenges sent to the node. */
  challenges: number
  /** Of those, answered in time with a valid signature of the node's peer key. */
  answered: number
}

/** What the reward function reads of an epoch bundle (its observations already verified). */
export interface RewardInput {
  epoch: number
  /** What the epoch releases (the emission schedule's `emissionOf(epoch)`). */
  emission: bigint
  nodes: readonly RewardNode[]
  /** Peer ids of the verifiers active in the epoch; observations by anyone else are ignored. */
  verifiers: readonly string[]
  uptime: readonly UptimeObservation[]
}

/** Why a node's uptime weight is what it is. */
export interface UptimeExplanation {
  peerId: string
  operator: `0x${string}`
  /** Each observing verifier's fraction of challenges answered (a verifier that observed others but not this node counts 0). */
  verifiers: { verifier: string; challenges: number; answered: number; fractionPpm: number }[]
  /** The median of the verifiers' fractions (ppm). */
  scorePpm: number
  /** Whether the score reached the threshold. */
  eligible: boolean
  /** min(stake, stakeCap). */
  stakeWeight: bigint
  vetting: boolean
  /** scorePpm × stakeWeight × (vettingFactorBps while vetting, else 10,000); 0 when not eligible. */
  weight: bigint
  /** This node's part of the uptime pool: floor(pool × weight / total weight). */
  reward: bigint
}

/** What an epoch pays. */
export interface EpochRewards {
  epoch: number
  paramsVersion: number
  emission: bigint
  /** Each service's pool; services nobody contributed to get 0 and their weight goes to the others. */
  pools: Record<RewardService, bigint>
  /** Amount per operator (lower-case address), only operators paid more than 0, sorted by address. */
  payouts: Map<`0x${string}`, bigint>
  /** Sum of the payouts. */
  total: bigint
  /** Emission not paid out: pools' rounding, and all of it when nobody earned anything. */
  dust: bigint
  /** Per node, sorted by peer id. */
  uptime: UptimeExplanation[]
}

/**
 * Checks a parameter set; the contracts refuse the same values (docs/rewards.md).
 *
 * @throws RangeError naming the first bad value.
 */
export function validateRewardParams(params: RewardParams): void {
  let sum = 0
  for (const s of REWARD_SERVICES) {
    const w = params.serviceWeightsBps[s]
    if (!Number.isSafeInteger(w) || w < 0)
      throw new RangeError(`serviceWeightsBps.${s} must be a whole number >= 0`)
    sum += w
  }
  if (sum !== Number(BPS)) throw new RangeError(`serviceWeightsBps must sum to 10000, not ${sum}`)
  const u = params.uptime
  if (!Number.isSafeInteger(u.thresholdPpm) || u.thresholdPpm < 0 || u.thresholdPpm > Number(PPM))
    throw new RangeError('uptime.thresholdPpm must be in [0, 1000000]')
  if (u.stakeCap <= 0n) throw new RangeError('uptime.stakeCap must be positive')
  if (!Number.isSafeInteger(u.vettingEpochs) || u.vettingEpochs < 0)
    throw new RangeError('uptime.vettingEpochs must be a whole number >= 0')
  if (!Number.isSafeInteger(u.vettingFactorBps) || u.vettingFactorBps < 0 || u.vettingFactorBps > Number(BPS))
    throw new RangeError('uptime.vettingFactorBps must be in [0, 10000]')
}

/**
 * Computes an epoch's rewards.
 *
 * 1. The emission is split between the services that have at least one node with positive weight,
 *    in proportion to their weights (a service nobody contributed to passes its share on); the last
 *    such service takes the rounding, so the pools sum to the emission exactly.
 * 2. Uptime: each node's score is the median, over the verifiers that observed anything this epoch,
 *    of the fraction of its challenges answered in time; below the threshold it is 0. Its weight is
 *    score × min(stake, stakeCap), times the vetting factor while it is new.
 * 3. An operator is paid floor(pool × its nodes' weight / all weight) from each pool.
 *
 * So the payouts sum to the emission less the dust, and the dust is less than the number of
 * operators paid times the number of pools (one rounding each).
 */
export function computeEpochRewards(input: RewardInput, params: RewardParams): EpochRewards {
  validateRewardParams(params)
  if (input.emission < 0n) throw new RangeError('emission must be >= 0')

  const uptime = uptimeWeights(input, params)
  const weights: Record<RewardService, Map<`0x${string}`, bigint>> = {
    uptime: byOperator(uptime),
    compute: new Map(),
    storage: new Map(),
    relay: new Map(),
    sensor: new Map(),
  }
  const totals = Object.fromEntries(REWARD_SERVICES.map((s) => [s, sumOf(weights[s].values())])) as Record<
    RewardService,
    bigint
  >

  // 1. Pools.
  const active = REWARD_SERVICES.filter((s) => totals[s] > 0n && params.serviceWeightsBps[s] > 0)
  const activeBps = active.reduce((sum, s) => sum + BigInt(params.serviceWeightsBps[s]), 0n)
  const pools = Object.fromEntries(REWARD_SERVICES.map((s) => [s, 0n])) as Record<RewardService, bigint>
  let left = input.emission
  active.forEach((s, i) => {
    const pool =
      i === active.length - 1 ? left : (input.emission * BigInt(params.serviceWeightsBps[s])) / activeBps
    pools[s] = pool
    left -= pool
  })

  // 3. Payouts.
  const payouts = new Map<`0x${string}`, bigint>()
  for (const s of active) {
    for (const [operator, w] of weights[s]) {
      const amount = (pools[s] * w) / totals[s]
      if (amount > 0n) payouts.set(operator, (payouts.get(operator) ?? 0n) + amount)
    }
  }
  for (const node of uptime)
    node.reward = totals.uptime > 0n ? (pools.uptime * node.weight) / totals.uptime : 0n

  const sorted = new Map([...payouts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  const total = sumOf(sorted.values())
  return {
    epoch: input.epoch,
    paramsVersion: params.version,
    emission: input.emission,
    pools,
    payouts: sorted,
    total,
    dust: input.emission - total,
    uptime,
  }
}

/** 2. Every registered node's uptime weight, with its explanation, sorted by peer id. */
function uptimeWeights(input: RewardInput, params: RewardParams): UptimeExplanation[] {
  const verifiers = new Set(input.verifiers)
  // One observation per (verifier, node): a bundle is deduplicated, but the function does not rely
  // on it. Of duplicates the one with the most answers counts, whatever the order.
  const seen = new Map<string, Map<string, UptimeObservation>>()
  for (const o of input.uptime) {
    if (!verifiers.has(o.verifier)) continue
    if (!Number.isSafeInteger(o.challenges) || o.challenges <= 0) continue
    if (!Number.isSafeInteger(o.answered) || o.answered < 0 || o.answered > o.challenges) continue
    let byNode = seen.get(o.verifier)
    if (byNode === undefined) {
      byNode = new Map()
      seen.set(o.verifier, byNode)
    }
    const held = byNode.get(o.node)
    if (
      held === undefined ||
      fraction(o) > fraction(held) ||
      (fraction(o) === fraction(held) && o.challenges > held.challenges)
    )
      byNode.set(o.node, o)
  }
  // The observers: verifiers that observed anything this epoch (one that was down does not count).
  const observers = [...seen.keys()].sort()
  const threshold = BigInt(params.uptime.thresholdPpm)
  const nodes = [...input.nodes].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
  const out: UptimeExplanation[] = []
  let previous: string | undefined
  for (const node of nodes) {
    if (node.peerId === previous) throw new RangeError(`node ${node.peerId} is listed twice`)
    previous = node.peerId
    const per = observers.map((verifier) => {
      const o = seen.get(verifier)?.get(node.peerId)
      return o === undefined
        ? { verifier, challenges: 0, answered: 0, fractionPpm: 0 }
        : { verifier, challenges: o.challenges, answered: o.answered, fractionPpm: Number(fraction(o)) }
    })
    const scorePpm = median(per.map((p) => BigInt(p.fractionPpm)))
    const eligible = per.length > 0 && scorePpm >= threshold && scorePpm > 0n
    const stakeWeight =
      node.stake < params.uptime.stakeCap ? (node.stake > 0n ? node.stake : 0n) : params.uptime.stakeCap
    const vetting = input.epoch - node.registeredEpoch < params.uptime.vettingEpochs
    const factor = vetting ? BigInt(params.uptime.vettingFactorBps) : BPS
    out.push({
      peerId: node.peerId,
      operator: node.operator.toLowerCase() as `0x${string}`,
      verifiers: per,
      scorePpm: Number(scorePpm),
      eligible,
      stakeWeight,
      vetting,
      weight: eligible ? scorePpm * stakeWeight * factor : 0n,
      reward: 0n,
    })
  }
  return out
}

function fraction(o: UptimeObservation): bigint {
  return (BigInt(o.answered) * PPM) / BigInt(o.challenges)
}

/** The median; of an even count, the mean of the middle two rounded down; 0 of none. */
function median(values: bigint[]): bigint {
  if (values.length === 0) return 0n
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const mid = sorted.length >> 1
  if (sorted.length % 2 === 1) return sorted[mid] as bigint
  return ((sorted[mid - 1] as bigint) + (sorted[mid] as bigint)) / 2n
}

function byOperator(nodes: readonly UptimeExplanation[]): Map<`0x${string}`, bigint> {
  const out = new Map<`0x${string}`, bigint>()
  for (const n of nodes) if (n.weight > 0n) out.set(n.operator, (out.get(n.operator) ?? 0n) + n.weight)
  return out
}

function sumOf(values: Iterable<bigint>): bigint {
  let sum = 0n
  for (const v of values) sum += v
  return sum
}
