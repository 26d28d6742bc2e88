import { parentCellAt } from '../core/h3-cells.js'
import { CountTable } from './count-table.js'
import { lowerAddress } from './cumulative-tree.js'
import { AccountAmounts, IntIndex, KeyIndex } from './key-index.js'
import { largeArray } from './large-array.js'

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

/** The services whose pools `work.rebateBps` caps: work anyone could pay themselves for. */
const PAID_WORK: readonly RewardService[] = ['compute', 'storage', 'relay']

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
    /**
     * The capped stake one H3 cell (of resolution 7) counts in all, base units: when the eligible
     * nodes of a cell hold more, each one's stake weight is scaled down so that they share this
     * much (a farm of identities in one place earns what one place earns). Undefined: no cell cap
     * (bundles made before the cap existed).
     */
    cellStakeCap?: bigint
    /** A node registered fewer than this many epochs before the epoch is being vetted. */
    vettingEpochs: number
    /** A node's weight while it is vetted, in basis points of the full weight. */
    vettingFactorBps: number
  }
  sensor: {
    /** Sensors paid per H3 cell (of resolution 5) and epoch: the best by score, then seniority. */
    cellCapacity: number
  }
  /**
   * Certified hardware (docs/rewards.md, "Certified hardware"). Undefined in parameter sets made
   * before it: every sensor can be paid and every node's stake weight is capped as `uptime` says.
   */
  hardware?: {
    /**
     * The makers whose device certificates count in the epoch: their Ed25519 keys, as peer ids
     * (governance keeps the list on-chain). A sensor certified by none of them earns no sensor reward.
     */
    makers: readonly string[]
    /**
     * The share of a node's uptime weight, in basis points, that is linear in its stake: uncapped,
     * so splitting stake across identities or claimed places gains nothing. The rest, (10,000 −
     * linearBps) × its capped and cell-shared stake, counts only for a node with a certified device
     * in its registered place, since only hardware makes identities and places distinct.
     */
    linearBps: number
  }
  /**
   * The rebate cap over all paid work (parameter sets from certified hardware on, in place of
   * `compute`): an operator's compute, storage and relay rewards together are at most this share
   * (basis points, below 10,000) of the payment fees burned in the epoch's blocks by payments to it,
   * each scaled down alike when they exceed it. Storage and relay are proven bytes anyone can make
   * for themselves (junk on their own disk, downloads from themselves), so only what someone paid
   * for, burning a fee, earns emission. What the cap holds back goes to the uptime pool.
   */
  work?: {
    rebateBps: number
  }
  /** Undefined in parameter sets made before the rebate cap: the compute pool is not capped. */
  compute?: {
    /**
     * An operator's compute reward in an epoch is at most this share (basis points, below 10,000) of
     * the payment fees burned in the epoch's blocks by payments to it: paying oneself never returns
     * what it burns. What the cap holds back goes to the uptime pool.
     */
    rebateBps: number
  }
}

/** A registered node as the epoch saw it (the registry at the epoch's first block). */
export interface RewardNode {
  peerId: string
  operator: `0x${string}`
  stake: bigint
  /** The epoch in which it registered. */
  registeredEpoch: number
  /**
   * The H3 cell it registered, 15 hex digits. Undefined: unknown (bundles made before cells were
   * recorded): no cell cap and no location rule for it. A value that is not an H3 cell earns no
   * uptime reward (a node claims a place).
   */
  cell?: string
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
  /**
   * The verifier's location probe of the node: its fastest answered challenge this epoch (ms) and
   * its own distance to the node's registered cell (km); undefined or null: none.
   */
  probe?: { rttMs: number; distanceKm: number } | null
}

/** One verifier's count of one node's verified compute work in one epoch. */
export interface ComputeObservation {
  verifier: string
  node: string
  /** Jobs of the node whose result an independent node matched (receipts the verifier checked). */
  jobs: number
  /** The prices those jobs were quoted at, base units. */
  value: bigint
  /** The verifier confirmed, by re-running the job, a signed wrong result of this node this epoch. */
  fraud: boolean
}

/** One verifier's proof-of-storage results for one node in one epoch. */
export interface StorageObservation {
  verifier: string
  node: string
  /** Chunk challenges sent to the node's shards. */
  challenges: number
  /** Of those, answered in time with a chunk that proves against the holder's signed root. */
  passed: number
  /** Bytes of the node's shards whose every challenge passed. */
  bytes: number
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
  /** Verified compute work (none: no compute pool). */
  compute?: readonly ComputeObservation[]
  /** Proof-of-storage results (none: no storage pool). */
  storage?: readonly StorageObservation[]
  /** Delivery bandwidth receipted by downloaders (none: no relay pool). */
  bandwidth?: readonly BandwidthObservation[]
  /** Sensor judgements (none: no sensor pool). */
  sensor?: readonly SensorObservation[]
  /**
   * Payment fees burned in the epoch's blocks, per provider (lower-case operator address, base
   * units), as the chain's Payments events say; the compute rebate cap reads it (none: nothing burned).
   */
  burned?: readonly (readonly [operator: string, amount: bigint])[]
}

/** One verifier's judgement of one node's sensors in one epoch. */
export interface SensorObservation {
  verifier: string
  node: string
  /** The coarse H3 cell the node's sensor certificates claim. */
  cell: string
  /** The verifier's fastest round trip to the node and its distance to the claimed cell; null: none. */
  probe: { rttMs: number; distanceKm: number } | null
  sensors: readonly {
    device: string
    /**
     * The maker whose certificate of the device the verifier checked (its Ed25519 key as a peer
     * id); absent: the device has no maker's certificate.
     */
    maker?: string
    /** The epoch the verifier first took a reading of it. */
    since: number
    readings: number
    /** Data quality in [0, PPM]. */
    qualityPpm: number
    /** Agreement with the neighbours in the same and adjacent cells, in [0, PPM]. */
    agreementPpm: number
  }[]
}

/** Kilometres a millisecond of round trip can cover: light in fibre (c / 1.5), there and back. */
export const FIBRE_KM_PER_RTT_MS = 100

/** Why one sensor earned what it earned. */
export interface SensorScore {
  device: string
  /** The maker more than half of the observers saw certify the device; null: none. */
  maker: string | null
  /** Certified by a maker of the parameter set's `hardware.makers` (always true without `hardware`). */
  certified: boolean
  /** Medians over the node's observers (an observer that did not report the sensor counts 0). */
  qualityPpm: number
  agreementPpm: number
  /** 0 when a probe makes the claimed cell impossible; else the agreement (half of it without probes). */
  locationPpm: number
  /** floor(quality × location / PPM). */
  scorePpm: number
  /** The median of the reporting observers' `since`: lower is more senior. */
  since: number
  /** Its place in its cell's ranking (1 = best), among sensors with a score above 0. */
  rank: number
  /** Within the cell's capacity and scoring above 0. */
  paid: boolean
  /** scorePpm × the node's vetting factor (bps) when paid, else 0. */
  weight: bigint
  /** One line for people. */
  reason: string
}

/** Why a node's sensor weight is what it is. */
export interface SensorExplanation {
  peerId: string
  operator: `0x${string}`
  /** The cell most observers saw claimed. */
  cell: string
  /** Observers whose probe said the claimed cell is impossible (round trip too short for the distance). */
  impossible: { verifier: string; rttMs: number; distanceKm: number; maxKm: number }[]
  /** Observers that probed the node. */
  probes: number
  sensors: SensorScore[]
  vetting: boolean
  /** The sum of its sensors' weights. */
  weight: bigint
  /** This node's part of the sensor pool. */
  reward: bigint
  /**
   * The certified device that places the node for the uptime pool's capped part: a certified sensor
   * with a score above 0, certified by this node alone, in the coarse cell of the node's registered
   * cell; null: none (always null without `hardware`).
   */
  hardware: { device: string; maker: string } | null
}

/** One verifier's count of the bytes downloaders receipted to one node in one epoch. */
export interface BandwidthObservation {
  verifier: string
  node: string
  bytes: number
  /** Distinct downloaders among those receipts. */
  downloaders: number
}

/** Why a node's relay (delivery bandwidth) weight is what it is. */
export interface BandwidthExplanation {
  peerId: string
  operator: `0x${string}`
  /** Each observer's count (an observer that reported nothing for this node counts 0 bytes). */
  verifiers: { verifier: string; bytes: number; downloaders: number }[]
  /** The median of the observers' byte counts. */
  bytes: number
  vetting: boolean
  /** bytes × (vettingFactorBps while vetting, else 10,000). */
  weight: bigint
  /** Its operator's cap on all paid work (see `ComputeExplanation.operatorCap`); null without `work`. */
  operatorCap: bigint | null
  /** This node's part of the relay pool. */
  reward: bigint
}

/** Why a node's storage weight is what it is. */
export interface StorageExplanation {
  peerId: string
  operator: `0x${string}`
  /** Each observer's results (an observer that reported nothing for this node counts 0 bytes). */
  verifiers: { verifier: string; challenges: number; passed: number; bytes: number }[]
  /** The median of the observers' proven bytes (a verifier whose challenges did not all pass counts 0). */
  bytes: number
  vetting: boolean
  /** bytes × (vettingFactorBps while vetting, else 10,000). */
  weight: bigint
  /** Its operator's cap on all paid work (see `ComputeExplanation.operatorCap`); null without `work`. */
  operatorCap: bigint | null
  /** This node's part of the storage pool. */
  reward: bigint
}

/** Why a node's compute weight is what it is. */
export interface ComputeExplanation {
  peerId: string
  operator: `0x${string}`
  /** Each observer's count (an observer that reported nothing for this node counts 0 jobs). */
  verifiers: { verifier: string; jobs: number; value: bigint; fraud: boolean }[]
  /** The median of the observers' values (fraud reports count 0). */
  value: bigint
  /** At least half of the observers confirmed fraud: the node's compute weight is 0 this epoch. */
  fraud: boolean
  vetting: boolean
  /** value × (vettingFactorBps while vetting, else 10,000); 0 on fraud. */
  weight: bigint
  /**
   * Its operator's reward cap: floor(fees its payments burned this epoch × rebateBps / 10,000), on
   * its compute reward (`compute.rebateBps`) or on its compute, storage and relay rewards together
   * (`work.rebateBps`); null when the parameter set has no rebate cap.
   */
  operatorCap: bigint | null
  /** This node's part of the compute pool (its operator's capped reward, split by weight). */
  reward: bigint
}

/** Why a node's uptime weight is what it is. */
export interface UptimeExplanation {
  peerId: string
  operator: `0x${string}`
  /** The cell its stake weight is capped in (its registered cell's parent at resolution 7); null: none. */
  cell: string | null
  /** Its registered cell is not an H3 cell: it earns no uptime reward. */
  invalidCell: boolean
  /** Observers whose probe says the registered cell is impossible (round trip too short for the distance). */
  impossible: { verifier: string; rttMs: number; distanceKm: number; maxKm: number }[]
  /** Enough observers ruled the cell out (more than a third of them, at least one): no uptime reward. */
  ruledOut: boolean
  /** Each observing verifier's fraction of challenges answered (a verifier that observed others but not this node counts 0). */
  verifiers: { verifier: string; challenges: number; answered: number; fractionPpm: number }[]
  /** The median of the verifiers' fractions (ppm). */
  scorePpm: number
  /** Whether the score reached the threshold. */
  eligible: boolean
  /**
   * Σ score × min(stake, stakeCap) / 10^6 over the eligible nodes of its cell (its own included): the
   * uptime-weighted stake the cell cap compares; 0 when not eligible.
   */
  cellStake: bigint
  /**
   * Without `hardware`: min(stake, stakeCap), scaled by cellStakeCap / cellStake when the cell holds
   * more than the cell cap (exactly: before dividing by 10^6). With it: (linearBps × stake +
   * (10,000 − linearBps) × certifiedStake) / 10,000, rounded down (the weight uses it unrounded).
   */
  stakeWeight: bigint
  /**
   * With `hardware`: the capped, cell-shared stake (as `stakeWeight` is without it) that the node's
   * certified device earns it; 0 without a certified device (and always 0 without `hardware`).
   */
  certifiedStake: bigint
  /** The certified device that places the node (see `SensorExplanation.hardware`); null: none. */
  hardware: { device: string; maker: string } | null
  vetting: boolean
  /**
   * Without `hardware`: scorePpm × stakeWeight × factor; with it, scorePpm × factor × (linearBps ×
   * stake + (10,000 − linearBps) × certifiedStake); the factor is vettingFactorBps while vetting,
   * else 10,000. 0 when not eligible.
   */
  weight: bigint
  /** This node's part of the uptime pool: floor(pool × weight / total weight). */
  reward: bigint
}

/** Every node's uptime score, and why. */
export interface UptimeScores {
  readonly size: number
  /** The verifiers that observed anything this epoch, sorted: the ones a node's median is taken over. */
  readonly observers: readonly string[]
  /** Why `peerId` earned what it earned from the uptime pool; undefined for a node not in the epoch. */
  explain(peerId: string): UptimeExplanation | undefined
  /** Every node's explanation, sorted by peer id (one object per node: for tables, not for millions). */
  list(): UptimeExplanation[]
}

/** What an epoch pays. */
export interface EpochRewards {
  epoch: number
  paramsVersion: number
  emission: bigint
  /** Each service's pool; services nobody contributed to get 0 and their weight goes to the others. */
  pools: Record<RewardService, bigint>
  /** Amount per operator (lower-case address), in no particular order; only operators paid more than 0. */
  payouts: AccountAmounts
  /** Sum of the payouts. */
  total: bigint
  /** Emission not paid out: pools' rounding, and all of it when nobody earned anything. */
  dust: bigint
  uptime: UptimeScores
  /** Nodes with compute observations, sorted by peer id. */
  compute: ComputeExplanation[]
  /** Nodes with storage observations, sorted by peer id. */
  storage: StorageExplanation[]
  /** Nodes with bandwidth observations, sorted by peer id. */
  bandwidth: BandwidthExplanation[]
  /** Nodes with sensor observations, sorted by peer id. */
  sensor: SensorExplanation[]
}

/** The parameter set in force until governance sets one on-chain (docs/rewards.md, "Parameters"). */
export const DEFAULT_REWARD_PARAMS: RewardParams = Object.freeze({
  version: 1,
  serviceWeightsBps: Object.freeze({
    uptime: 4_000,
    compute: 3_000,
    storage: 2_000,
    relay: 500,
    sensor: 500,
  }),
  uptime: Object.freeze({
    thresholdPpm: 250_000,
    stakeCap: 10_000n * 10n ** 18n,
    cellStakeCap: 10_000n * 10n ** 18n,
    vettingEpochs: 3,
    vettingFactorBps: 5_000,
  }),
  sensor: Object.freeze({ cellCapacity: 5 }),
  hardware: Object.freeze({ makers: Object.freeze([]) as readonly string[], linearBps: 5_000 }),
  work: Object.freeze({ rebateBps: 9_000 }),
})

/** Most makers a parameter set may approve (the contract's bound). */
export const MAX_MAKERS = 256

/**
 * The parameter set's rebate cap in basis points, on compute alone (`compute`) or on all paid work
 * (`work`); undefined without one. An epoch with one needs the fees burned in it (`RewardInput.burned`).
 */
export function rebateCapOf(params: {
  compute?: { rebateBps: number } | undefined
  work?: { rebateBps: number } | undefined
}): number | undefined {
  return params.work?.rebateBps ?? params.compute?.rebateBps
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
  for (const [name, rebate] of [
    ['compute', params.compute?.rebateBps],
    ['work', params.work?.rebateBps],
  ] as const)
    if (rebate !== undefined && (!Number.isSafeInteger(rebate) || rebate < 0 || rebate >= Number(BPS)))
      throw new RangeError(
        `${name}.rebateBps must be in [0, 9999]: a rebate of the whole fee would make paying oneself free`,
      )
  if (params.work !== undefined && params.compute !== undefined)
    throw new RangeError('work.rebateBps replaces compute.rebateBps: give one of them')
  if (u.cellStakeCap !== undefined && u.cellStakeCap < u.stakeCap)
    throw new RangeError('uptime.cellStakeCap must be at least uptime.stakeCap')
  if (!Number.isSafeInteger(u.vettingEpochs) || u.vettingEpochs < 0)
    throw new RangeError('uptime.vettingEpochs must be a whole number >= 0')
  if (!Number.isSafeInteger(u.vettingFactorBps) || u.vettingFactorBps < 0 || u.vettingFactorBps > Number(BPS))
    throw new RangeError('uptime.vettingFactorBps must be in [0, 10000]')
  const c = params.sensor.cellCapacity
  if (!Number.isSafeInteger(c) || c < 1 || c > 2 ** 32 - 1)
    throw new RangeError('sensor.cellCapacity must be a whole number in [1, 4294967295]')
  const h = params.hardware
  if (h !== undefined) {
    if (!Number.isSafeInteger(h.linearBps) || h.linearBps < 0 || h.linearBps > Number(BPS))
      throw new RangeError('hardware.linearBps must be in [0, 10000]')
    if (h.makers.length > MAX_MAKERS) throw new RangeError(`hardware.makers may list at most ${MAX_MAKERS}`)
    if (new Set(h.makers).size !== h.makers.length)
      throw new RangeError('hardware.makers lists a maker twice')
  }
}

/**
 * Computes an epoch's rewards.
 *
 * 1. The emission is split between the services that have at least one node with positive weight,
 *    in proportion to their weights (a service nobody contributed to passes its share on); the last
 *    such service takes the rounding, so the pools sum to the emission exactly.
 * 2. Uptime: each node's score is the median, over the verifiers that observed anything this epoch,
 *    of the fraction of its challenges answered in time (a verifier that observed others but not
 *    this node counts 0); below the threshold it is 0, and so it is when its registered cell is not
 *    an H3 cell or more than a third of the observers' probes rule the cell out (light in fibre).
 *    Its stake weight is min(stake, stakeCap), scaled down so that the eligible nodes of one cell
 *    (resolution 7) count at most cellStakeCap together, each weighted by its score; its weight is score × stake weight, times
 *    the vetting factor while it is new.
 * 3. An operator is paid floor(pool × its nodes' weight / all weight) from each pool.
 *
 * So the payouts sum to the emission less the dust, and the dust is less than the number of
 * operators with weight times the number of pools (one rounding each).
 *
 * Exact integers throughout: amounts and weights are bigint; counts, fractions and scores (ppm) are
 * safe integers combined only by exact operations (`divFloor`), so every machine gets the same bits.
 * Linear in nodes and observations (a million nodes with three verifiers take about a second).
 */
export function computeEpochRewards(input: RewardInput, params: RewardParams): EpochRewards {
  validateRewardParams(params)
  if (input.emission < 0n) throw new RangeError('emission must be >= 0')

  const uptime = new UptimeTable(input, params)
  // Sensors first: their certified devices are what places nodes for the uptime pool's capped part.
  const sensor = sensorWeights(input, params, uptime.observers)
  const hardware = new Map<string, { device: string; maker: string }>()
  for (const e of sensor) if (e.hardware !== null) hardware.set(e.peerId, e.hardware)
  uptime.place(hardware)
  const compute = computeWeights(input, params, uptime.observers)
  const computeWeightsByOperator = new AccountAmounts()
  for (const c of compute) if (c.weight > 0n) computeWeightsByOperator.add(c.operator, c.weight)
  const storage = storageWeights(input, params, uptime.observers)
  const storageWeightsByOperator = new AccountAmounts()
  for (const c of storage) if (c.weight > 0n) storageWeightsByOperator.add(c.operator, c.weight)
  const bandwidth = bandwidthWeights(input, params, uptime.observers)
  const relayWeightsByOperator = new AccountAmounts()
  for (const c of bandwidth) if (c.weight > 0n) relayWeightsByOperator.add(c.operator, c.weight)
  const sensorWeightsByOperator = new AccountAmounts()
  for (const c of sensor) if (c.weight > 0n) sensorWeightsByOperator.add(c.operator, c.weight)
  const weights: Record<RewardService, AccountAmounts> = {
    uptime: uptime.byOperator(),
    compute: computeWeightsByOperator,
    storage: storageWeightsByOperator,
    relay: relayWeightsByOperator,
    sensor: sensorWeightsByOperator,
  }
  const totals = Object.fromEntries(REWARD_SERVICES.map((s) => [s, weights[s].sum()])) as Record<
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
  // 2b'. The rebate cap: an operator's compute reward (`compute`), or its compute, storage and relay
  // rewards together (`work`), are at most its share of the fees its payments burned, each scaled
  // down alike; what the cap holds back goes to the uptime pool (or stays unminted without one).
  const rebate = rebateCapOf(params)
  const capped: readonly RewardService[] = params.work !== undefined ? PAID_WORK : ['compute']
  const paid = new Map<RewardService, AccountAmounts>()
  const caps = new Map<string, bigint>()
  if (rebate !== undefined && capped.some((s) => pools[s] > 0n)) {
    const burned = new Map<string, bigint>()
    for (const [operator, amount] of input.burned ?? []) {
      if (amount <= 0n) continue
      const key = lowerAddress(operator as `0x${string}`)
      burned.set(key, (burned.get(key) ?? 0n) + amount)
    }
    // Each operator's uncapped share of each capped pool, and their sum.
    const shares = new Map<string, bigint>()
    for (const s of capped)
      if (pools[s] > 0n)
        for (const [operator, w] of weights[s])
          shares.set(operator, (shares.get(operator) ?? 0n) + (pools[s] * w) / totals[s])
    for (const operator of shares.keys()) {
      const cap = ((burned.get(operator) ?? 0n) * BigInt(rebate)) / BPS
      caps.set(operator, cap)
    }
    let held = 0n
    for (const s of capped) {
      if (pools[s] === 0n) continue
      const amounts = new AccountAmounts()
      let sum = 0n
      for (const [operator, w] of weights[s]) {
        const share = (pools[s] * w) / totals[s]
        const all = shares.get(operator) ?? 0n
        const cap = caps.get(operator) ?? 0n
        const amount = all <= cap ? share : (share * cap) / all
        if (amount > 0n) amounts.add(operator, amount)
        sum += amount
      }
      paid.set(s, amounts)
      held += pools[s] - sum
      pools[s] = sum
    }
    if (active.includes('uptime')) pools.uptime += held
  }
  const rewardOf = (s: RewardService, operator: `0x${string}`, weight: bigint): bigint => {
    const amounts = paid.get(s)
    if (amounts === undefined) return totals[s] > 0n ? (pools[s] * weight) / totals[s] : 0n
    const opWeight = weights[s].get(operator) ?? 0n
    return opWeight > 0n ? ((amounts.get(operator) ?? 0n) * weight) / opWeight : 0n
  }
  const capOf = (s: RewardService, operator: string) =>
    rebate === undefined || !capped.includes(s) ? null : (caps.get(operator) ?? 0n)
  for (const c of compute) {
    c.operatorCap = capOf('compute', c.operator)
    c.reward = rewardOf('compute', c.operator, c.weight)
  }
  for (const c of storage) {
    c.operatorCap = capOf('storage', c.operator)
    c.reward = rewardOf('storage', c.operator, c.weight)
  }
  for (const c of bandwidth) {
    c.operatorCap = capOf('relay', c.operator)
    c.reward = rewardOf('relay', c.operator, c.weight)
  }
  uptime.pool = pools.uptime
  uptime.totalWeight = totals.uptime
  for (const c of sensor) c.reward = totals.sensor > 0n ? (pools.sensor * c.weight) / totals.sensor : 0n

  // 3. Payouts, written over the uptime weights (read for the last time here): each uptime
  // operator keeps its position (no hashing and no second table for most operators); an operator
  // whose share floors to 0 is dropped at the end.
  let payouts = weights.uptime
  let zeros = 0
  let total = 0n
  if (!active.includes('uptime')) for (let i = 0; i < payouts.size; i++) payouts.setAt(i, 0n)
  for (const s of active) {
    const pool = pools[s]
    const all = totals[s]
    if (s === 'uptime') {
      for (let i = 0; i < payouts.size; i++) {
        const amount = (pool * payouts.amountAt(i)) / all
        if (amount > 0n) payouts.setAt(i, amount)
        else {
          payouts.setAt(i, 0n)
          zeros++
        }
        total += amount
      }
      continue
    }
    for (let i = 0; i < weights[s].size; i++) {
      const [operator, w] = weights[s].at(i)
      const amounts = paid.get(s)
      const amount = amounts !== undefined ? (amounts.get(operator) ?? 0n) : (pool * w) / all
      if (amount > 0n) payouts.add(operator, amount)
      total += amount
    }
  }
  if (zeros > 0) {
    const paid = new AccountAmounts(payouts.size)
    for (const [operator, amount] of payouts) if (amount > 0n) paid.add(operator, amount)
    payouts = paid
  }
  return {
    epoch: input.epoch,
    paramsVersion: params.version,
    emission: input.emission,
    pools,
    payouts,
    total,
    dust: input.emission - total,
    uptime,
    compute,
    storage,
    bandwidth,
    sensor,
  }
}

/**
 * 2e. Sensor weights. The observers are the uptime observers and every listed verifier that sent a
 * sensor observation. For each node: its cell is the one most observers saw claimed; the claim is
 * impossible when any observer's probe found a round trip too short for its distance to the cell
 * (light in fibre: `FIBRE_KM_PER_RTT_MS` km per ms). For each sensor: quality and agreement are the
 * medians over the observers (one that did not report it counts 0), location is 0 when impossible,
 * else the agreement (half of it when nobody probed), and the score is quality × location. Then per
 * cell, sensors scoring above 0 are ranked by score, then seniority (`since`), then device, and the
 * first `cellCapacity` are paid their score times the node's vetting factor: crowding a cell does
 * not pay. A device reported under two nodes is paid under neither. With `hardware`, a sensor's maker
 * is the one more than half of the observers report, and only a sensor certified by an approved maker
 * is paid; the node's first such sensor scoring above 0, in the coarse cell of the node's
 * registered cell, is its `hardware` (what the uptime pool's capped part needs).
 */
function sensorWeights(
  input: RewardInput,
  params: RewardParams,
  uptimeObservers: readonly string[],
): SensorExplanation[] {
  const { observers, nodes } = observedNodes(
    input,
    input.sensor ?? [],
    uptimeObservers,
    (o) =>
      typeof o.cell === 'string' &&
      (o.probe === null ||
        (Number.isSafeInteger(o.probe.rttMs) &&
          o.probe.rttMs >= 0 &&
          Number.isSafeInteger(o.probe.distanceKm) &&
          o.probe.distanceKm >= 0)) &&
      o.sensors.length <= MAX_SENSORS &&
      o.sensors.every(
        (s) =>
          Number.isSafeInteger(s.since) &&
          s.since >= 0 &&
          Number.isSafeInteger(s.qualityPpm) &&
          s.qualityPpm >= 0 &&
          s.qualityPpm <= PPM_NUMBER &&
          Number.isSafeInteger(s.agreementPpm) &&
          s.agreementPpm >= 0 &&
          s.agreementPpm <= PPM_NUMBER,
      ),
    // Of duplicates, the one reporting more sensors counts, then the one with a probe.
    (o, held) =>
      o.sensors.length > held.sensors.length ||
      (o.sensors.length === held.sensors.length && o.probe !== null && held.probe === null),
  )
  const devicesSeen = new Map<string, number>()
  const makers = params.hardware === undefined ? undefined : new Set(params.hardware.makers)
  const explained = nodes.map(({ node, seen }) => {
    const reports = observers.flatMap((v) => {
      const o = seen.get(v)
      return o === undefined ? [] : [o]
    })
    // The cell most observers saw claimed; of a tie, the smallest.
    const votes = new Map<string, number>()
    for (const o of reports) votes.set(o.cell, (votes.get(o.cell) ?? 0) + 1)
    const cell = [...votes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? ''
    const impossible: SensorExplanation['impossible'] = []
    let probes = 0
    for (const o of reports) {
      if (o.probe === null || o.cell !== cell) continue
      probes++
      const maxKm = FIBRE_KM_PER_RTT_MS * o.probe.rttMs
      if (o.probe.distanceKm > maxKm)
        impossible.push({ verifier: o.verifier, rttMs: o.probe.rttMs, distanceKm: o.probe.distanceKm, maxKm })
    }
    const devices = [...new Set(reports.flatMap((o) => o.sensors.map((s) => s.device)))].sort()
    const { vetting, factor } = factorOf(input, params, node)
    const sensors: SensorScore[] = devices.map((device) => {
      devicesSeen.set(device, (devicesSeen.get(device) ?? 0) + 1)
      const of = observers.map((v) => seen.get(v)?.sensors.find((s) => s.device === device))
      const qualityPpm = Number(medianOf(of.map((s) => BigInt(s?.qualityPpm ?? 0))))
      const agreementPpm = Number(medianOf(of.map((s) => BigInt(s?.agreementPpm ?? 0))))
      const since = Number(medianOf(of.flatMap((s) => (s === undefined ? [] : [BigInt(s.since)]))))
      const locationPpm = impossible.length > 0 ? 0 : probes > 0 ? agreementPpm : divFloor(agreementPpm, 2)
      const scorePpm = divFloor(qualityPpm * locationPpm, PPM_NUMBER)
      const maker = majorityOf(
        of.map((s) => (typeof s?.maker === 'string' ? s.maker : undefined)),
        observers.length,
      )
      return {
        device,
        maker: maker ?? null,
        certified: makers === undefined || (maker !== undefined && makers.has(maker)),
        qualityPpm,
        agreementPpm,
        locationPpm,
        scorePpm,
        since,
        rank: 0,
        paid: false,
        weight: 0n,
        reason: '',
      }
    })
    return {
      explanation: {
        peerId: node.peerId,
        operator: lowerAddress(node.operator),
        cell,
        impossible,
        probes,
        sensors,
        vetting,
        weight: 0n,
        reward: 0n,
        hardware: null as SensorExplanation['hardware'],
      } satisfies SensorExplanation,
      factor,
      node,
    }
  })
  // Per cell: rank, and pay the first `cellCapacity`.
  const byCell = new Map<string, { s: SensorScore; owner: (typeof explained)[number] }[]>()
  for (const owner of explained) {
    for (const s of owner.explanation.sensors) {
      if ((devicesSeen.get(s.device) ?? 0) > 1) {
        s.reason = 'the device is certified by more than one node'
        continue
      }
      if (owner.explanation.impossible.length > 0) {
        s.reason = 'location impossible: a round trip was too short for the claimed cell'
        continue
      }
      if (s.scorePpm === 0) {
        s.reason = s.qualityPpm === 0 ? 'no usable data' : 'no location confidence'
        continue
      }
      if (!s.certified) {
        s.reason =
          s.maker === null
            ? 'no maker certifies the device: only certified hardware is paid'
            : `its maker ${s.maker} is not approved in this epoch`
        continue
      }
      // The first certified sensor (by device) in the node's own coarse cell places the node.
      if (
        makers !== undefined &&
        owner.explanation.hardware === null &&
        s.maker !== null &&
        parentCellAt(owner.node.cell, SENSOR_CELL_RESOLUTION) === owner.explanation.cell
      )
        owner.explanation.hardware = { device: s.device, maker: s.maker }
      const list = byCell.get(owner.explanation.cell) ?? []
      list.push({ s, owner })
      byCell.set(owner.explanation.cell, list)
    }
  }
  const capacity = params.sensor.cellCapacity
  for (const [cell, list] of byCell) {
    list.sort(
      (a, b) => b.s.scorePpm - a.s.scorePpm || a.s.since - b.s.since || (a.s.device < b.s.device ? -1 : 1),
    )
    list.forEach(({ s, owner }, i) => {
      s.rank = i + 1
      s.paid = i < capacity
      s.weight = s.paid ? BigInt(s.scorePpm) * owner.factor : 0n
      s.reason = s.paid
        ? `paid: rank ${i + 1} of ${list.length} in cell ${cell} (capacity ${capacity})`
        : `over the cell's capacity: rank ${i + 1} of ${list.length} in cell ${cell} (capacity ${capacity})`
      owner.explanation.weight += s.weight
    })
  }
  return explained.map((e) => e.explanation)
}

/**
 * 2d. Relay (delivery bandwidth) weights. The observers are the uptime observers and every listed
 * verifier that sent a bandwidth observation; for each node any of them observed, an observer that
 * reported nothing counts 0 bytes. The weight is the median of the observers' byte counts, times
 * the vetting factor while the node is new. (Receipts come from downloaders: a node cannot receipt
 * itself, and verifiers count each download session once, at its latest cumulative count.)
 */
function bandwidthWeights(
  input: RewardInput,
  params: RewardParams,
  uptimeObservers: readonly string[],
): BandwidthExplanation[] {
  const { observers, nodes } = observedNodes(
    input,
    input.bandwidth ?? [],
    uptimeObservers,
    (o) =>
      Number.isSafeInteger(o.bytes) &&
      o.bytes >= 0 &&
      Number.isSafeInteger(o.downloaders) &&
      o.downloaders >= 0,
    (o, held) => o.bytes > held.bytes,
  )
  return nodes.map(({ node, seen }) => {
    const verifiers = observers.map((verifier) => {
      const o = seen.get(verifier)
      return { verifier, bytes: o?.bytes ?? 0, downloaders: o?.downloaders ?? 0 }
    })
    const bytes = Number(medianOf(verifiers.map((v) => BigInt(v.bytes))))
    const { vetting, factor } = factorOf(input, params, node)
    return {
      peerId: node.peerId,
      operator: lowerAddress(node.operator),
      verifiers,
      bytes,
      vetting,
      weight: BigInt(bytes) * factor,
      operatorCap: null,
      reward: 0n,
    }
  })
}

/**
 * 2c. Storage weights. The observers are the uptime observers and every listed verifier that sent a
 * storage observation; for each node any of them observed, an observer that reported nothing for it
 * counts 0 bytes. A verifier's proven bytes for a node are its observation's bytes when every one
 * of its challenges passed, else 0 (a holder that cannot produce one challenged chunk in time is
 * not paid by that verifier). The node's weight is the median of the observers' proven bytes, times
 * the vetting factor while it is new: a minority of verifiers can neither invent storage nor hide it.
 */
function storageWeights(
  input: RewardInput,
  params: RewardParams,
  uptimeObservers: readonly string[],
): StorageExplanation[] {
  const proven = (x: StorageObservation) => (x.passed === x.challenges ? x.bytes : 0)
  const { observers, nodes } = observedNodes(
    input,
    input.storage ?? [],
    uptimeObservers,
    (o) =>
      Number.isSafeInteger(o.challenges) &&
      Number.isSafeInteger(o.passed) &&
      Number.isSafeInteger(o.bytes) &&
      o.challenges > 0 &&
      o.challenges <= MAX_COUNT &&
      o.passed >= 0 &&
      o.passed <= o.challenges &&
      o.bytes >= 0,
    // Of duplicates, the one proving more bytes counts, then more passes.
    (o, held) => proven(o) > proven(held) || (proven(o) === proven(held) && o.passed > held.passed),
  )
  return nodes.map(({ node, seen }) => {
    const verifiers = observers.map((verifier) => {
      const o = seen.get(verifier)
      return { verifier, challenges: o?.challenges ?? 0, passed: o?.passed ?? 0, bytes: o?.bytes ?? 0 }
    })
    // Exactly (bigint): two byte counts near 2^53 would not add up exactly as numbers.
    const bytes = Number(
      medianOf(verifiers.map((v) => (v.challenges > 0 && v.passed === v.challenges ? BigInt(v.bytes) : 0n))),
    )
    const { vetting, factor } = factorOf(input, params, node)
    return {
      peerId: node.peerId,
      operator: lowerAddress(node.operator),
      verifiers,
      bytes,
      vetting,
      weight: BigInt(bytes) * factor,
      operatorCap: null,
      reward: 0n,
    }
  })
}

/**
 * 2b. Compute weights. The observers are the uptime observers and every listed verifier that sent a
 * compute observation; for each node any of them observed, an observer that reported nothing for it
 * counts 0. A node is caught when at least half of the observers confirmed fraud (weight 0);
 * otherwise its value is the median of the observers' values (fraud reports count 0), times the
 * vetting factor while it is new. A minority of verifiers can neither invent work nor hide it.
 */
function computeWeights(
  input: RewardInput,
  params: RewardParams,
  uptimeObservers: readonly string[],
): ComputeExplanation[] {
  const { observers, nodes } = observedNodes(
    input,
    input.compute ?? [],
    uptimeObservers,
    (o) => Number.isSafeInteger(o.jobs) && o.jobs >= 0 && o.jobs <= MAX_COUNT && o.value >= 0n,
    // Of duplicates, a fraud report wins, then the higher value.
    (o, held) =>
      (o.fraud && !held.fraud) ||
      (o.fraud === held.fraud && (o.value > held.value || (o.value === held.value && o.jobs > held.jobs))),
  )
  return nodes.map(({ node, seen }) => {
    const verifiers = observers.map((verifier) => {
      const o = seen.get(verifier)
      return { verifier, jobs: o?.jobs ?? 0, value: o?.value ?? 0n, fraud: o?.fraud ?? false }
    })
    const fraud = verifiers.filter((v) => v.fraud).length * 2 >= verifiers.length
    const value = medianOf(verifiers.map((v) => (v.fraud ? 0n : v.value)))
    const { vetting, factor } = factorOf(input, params, node)
    return {
      peerId: node.peerId,
      operator: lowerAddress(node.operator),
      verifiers,
      value,
      fraud,
      vetting,
      weight: fraud ? 0n : value * factor,
      operatorCap: null,
      reward: 0n,
    }
  })
}

/**
 * What every work weigher (compute, storage, relay) starts from: each node's observations, the best
 * one per listed verifier (`better` decides between duplicates, whatever their order), the
 * observers (the uptime observers and every listed verifier that reported this service, sorted),
 * and the registered nodes among those observed, by peer id in order. Invalid observations
 * (`valid` false) and unlisted verifiers are skipped.
 */
function observedNodes<O extends { verifier: string; node: string }>(
  input: RewardInput,
  observations: readonly O[],
  uptimeObservers: readonly string[],
  valid: (o: O) => boolean,
  better: (o: O, held: O) => boolean,
): { observers: string[]; nodes: { node: RewardNode; seen: Map<string, O> }[] } {
  const listed = new Set(input.verifiers)
  const byNode = new Map<string, Map<string, O>>()
  const observers = new Set(uptimeObservers)
  for (const o of observations) {
    if (!listed.has(o.verifier) || !valid(o)) continue
    observers.add(o.verifier)
    let seen = byNode.get(o.node)
    if (!seen) {
      seen = new Map()
      byNode.set(o.node, seen)
    }
    const held = seen.get(o.verifier)
    if (held === undefined || better(o, held)) seen.set(o.verifier, o)
  }
  if (byNode.size === 0) return { observers: [], nodes: [] }
  // Only the observed nodes are looked up (an epoch of a million nodes may have a few with work).
  const registered = new Map<string, RewardNode>()
  for (const n of input.nodes) if (byNode.has(n.peerId)) registered.set(n.peerId, n)
  const nodes: { node: RewardNode; seen: Map<string, O> }[] = []
  for (const peerId of [...byNode.keys()].sort()) {
    const node = registered.get(peerId)
    if (node !== undefined) nodes.push({ node, seen: byNode.get(peerId) as Map<string, O> })
  }
  return { observers: [...observers].sort(), nodes }
}

/** Whether `node` is being vetted in the input's epoch, and its weight factor (basis points). */
function factorOf(
  input: RewardInput,
  params: RewardParams,
  node: RewardNode,
): { vetting: boolean; factor: bigint } {
  const vetting = input.epoch - node.registeredEpoch < params.uptime.vettingEpochs
  return { vetting, factor: vetting ? BigInt(params.uptime.vettingFactorBps) : BPS }
}

/** The value more than half of `of` observers report (undefined entries report nothing); undefined if none. */
function majorityOf(values: readonly (string | undefined)[], of: number): string | undefined {
  const counts = new Map<string, number>()
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1)
  for (const [v, count] of counts) if (count * 2 > of) return v
  return undefined
}

/** The resolution of the cells sensors are paid in (a sensor never publishes a finer place). */
const SENSOR_CELL_RESOLUTION = 5

/** The median of bigints; of an even count, the floor of the mean of the middle two; 0 of none. */
function medianOf(values: bigint[]): bigint {
  const n = values.length
  if (n === 0) return 0n
  values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const mid = n >> 1
  if (n % 2 === 1) return values[mid] as bigint
  return ((values[mid - 1] as bigint) + (values[mid] as bigint)) / 2n
}

/** floor(a / b) of non-negative safe integers, exactly. */
function divFloor(a: number, b: number): number {
  return (a - (a % b)) / b
}

/** 2. The uptime scores, held in typed arrays (a million nodes are a few tens of MB). */
class UptimeTable implements UptimeScores {
  readonly size: number
  readonly observers: readonly string[]
  /** Set once the pools are known. */
  pool = 0n
  totalWeight = 0n
  private readonly input: RewardInput
  private readonly params: RewardParams
  private readonly nodeIndex: KeyIndex
  /** Per observer (in `observers` order) and node: challenges and answers, 0 challenges = none. */
  private readonly challenges: CountTable
  private readonly answered: CountTable
  private readonly scores: Int32Array
  /** Location probes per observer and node (-1: none); undefined when no observation carried one. */
  private readonly rtts: CountTable | undefined
  private readonly distances: CountTable | undefined
  /** Per node: its index in `cellStakes` (-1: not eligible or no cell), and INVALID_CELL / RULED_OUT. */
  private readonly groups: Int32Array
  private readonly flags: Uint8Array
  /** Per cell group: the capped stake of its eligible nodes, and the group's key (`cellKey`). */
  private cellStakes: bigint[] = []
  /** cellStakeCap × PPM: what `cellStakes` are compared with (0 without a cell cap). */
  private readonly cellRoom: bigint
  private readonly groupKeys: number[] = []
  /**
   * Per cell group, the stake weight of its nodes that stake at least the stake cap (all the same:
   * stakeCap × room / cellStake), computed at the first one; empty until the groups are known.
   */
  private capWeights: (bigint | undefined)[] = []
  /** Per cell group: 1 when its stake is over the room (`cellStakes[g] > cellRoom`). */
  private overRoom: Uint8Array = new Uint8Array(0)
  /** With `hardware`: the nodes (by index) with a certified device in their place, and the device. */
  private certified: Map<number, { device: string; maker: string }> | undefined

  constructor(input: RewardInput, params: RewardParams) {
    this.input = input
    this.params = params
    this.cellRoom = (params.uptime.cellStakeCap ?? 0n) * PPM
    const n = input.nodes.length
    this.size = n
    const nodeIndex = KeyIndex.ofDistinct(n, (i) => (input.nodes[i] as RewardNode).peerId)
    if (typeof nodeIndex === 'number')
      throw new RangeError(`node ${(input.nodes[nodeIndex] as RewardNode).peerId} is listed twice`)
    this.nodeIndex = nodeIndex
    const verifiers = [...new Set(input.verifiers)].sort()
    const vIndex = new Map(verifiers.map((v, i) => [v, i]))
    const challenges = new CountTable(verifiers.length * n, 0)
    const answered = new CountTable(verifiers.length * n, 0)
    const observed = new Uint8Array(verifiers.length)
    // Bundles list a verifier's observations in node order: try the node after the verifier's last
    // one before hashing the peer id (same result, a string comparison instead of a lookup).
    const last = new Int32Array(verifiers.length).fill(-1)
    // Observations come grouped by verifier: the last one's index is reused while it repeats.
    let lastVerifier: string | undefined
    let lastV: number | undefined
    // Location probes, per verifier and node (allocated at the first one): round trip and distance.
    let rtts: CountTable | undefined
    let distances: CountTable | undefined
    for (const o of input.uptime) {
      if (o.verifier !== lastVerifier) {
        lastVerifier = o.verifier
        lastV = vIndex.get(o.verifier)
      }
      const v = lastV
      if (v === undefined) continue
      const next = (last[v] as number) + 1
      const i = next < n && input.nodes[next]?.peerId === o.node ? next : this.nodeIndex.get(o.node)
      if (i >= 0) last[v] = i
      if (!Number.isSafeInteger(o.challenges) || !Number.isSafeInteger(o.answered)) continue
      if (o.challenges <= 0 || o.challenges > MAX_COUNT || o.answered < 0 || o.answered > o.challenges)
        continue
      observed[v] = 1
      if (i < 0) continue
      const at = v * n + i
      const probe = o.probe
      if (
        probe != null &&
        Number.isSafeInteger(probe.rttMs) &&
        Number.isSafeInteger(probe.distanceKm) &&
        probe.rttMs >= 0 &&
        probe.rttMs <= MAX_COUNT &&
        probe.distanceKm >= 0 &&
        probe.distanceKm <= MAX_COUNT
      ) {
        if (rtts === undefined || distances === undefined) {
          rtts = new CountTable(verifiers.length * n, -1)
          distances = new CountTable(verifiers.length * n, -1)
        }
        // Of duplicates' probes, the fastest round trip counts (then the longer distance).
        const r = rtts.get(at)
        if (r < 0 || probe.rttMs < r || (probe.rttMs === r && probe.distanceKm > distances.get(at))) {
          rtts.set(at, probe.rttMs)
          distances.set(at, probe.distanceKm)
        }
      }
      // Of duplicates, the higher fraction counts (then the more challenges), whatever the order.
      const c = challenges.get(at)
      const a = answered.get(at)
      const better =
        c === 0 ||
        o.answered * c > a * o.challenges ||
        (o.answered * c === a * o.challenges && o.challenges > c)
      if (better) {
        challenges.set(at, o.challenges)
        answered.set(at, o.answered)
      }
    }
    // The observers: verifiers that observed anything this epoch (one that was down does not count).
    const kept = verifiers.flatMap((_, i) => (observed[i] === 1 ? [i] : []))
    this.observers = kept.map((i) => verifiers[i] as string)
    // The observers' rows, in place: moved down over the rows of verifiers that observed nothing
    // (a copy of a million-node table would be tens of MB more at the peak).
    const rows = (table: CountTable) => {
      kept.forEach((from, to) => {
        if (from !== to) table.move(to * n, from * n, n)
      })
      return table
    }
    this.challenges = rows(challenges)
    this.answered = rows(answered)
    if (rtts !== undefined && distances !== undefined) {
      this.rtts = rows(rtts)
      this.distances = rows(distances)
    }
    this.scores = largeArray(Int32Array, n)
    const k = kept.length
    const fractions = new Int32Array(k)
    for (let i = 0; i < n; i++) {
      for (let v = 0; v < k; v++) fractions[v] = this.fraction(v, i)
      this.scores[i] = median(fractions)
    }
    this.groups = largeArray(Int32Array, n).fill(-1)
    this.flags = largeArray(Uint8Array, n)
  }

  /**
   * Places: each node's cell group, whether its claim is void, and each cell's eligible stake. With
   * `hardware`, only the nodes `hardware` names (their certified devices) join a cell group: the
   * capped part of the weight is theirs alone.
   */
  place(hardware: ReadonlyMap<string, { device: string; maker: string }>): void {
    const { input, params } = this
    const n = this.size
    const k = this.observers.length
    if (params.hardware !== undefined) {
      this.certified = new Map()
      for (const [peerId, device] of hardware) {
        const i = this.nodeIndex.get(peerId)
        if (i >= 0) this.certified.set(i, device)
      }
    }
    const certified = this.certified
    const u = params.uptime
    const threshold = Math.max(1, u.thresholdPpm)
    const tolerated = divFloor(Math.max(0, k - 1), 3)
    const groupOf = new IntIndex(1_024)
    const sums: bigint[] = []
    // Per group: the sum of the scores of its nodes staking at least the cap, whose capped stakes
    // are all stakeCap (an integer below 2^53: at most 10^6 a node).
    const atCap: number[] = []
    if (k === 0) return
    for (let i = 0; i < n; i++) {
      const node = input.nodes[i] as RewardNode
      if (node.cell !== undefined) {
        const key = cellKey(node.cell)
        if (key < 0) {
          this.flags[i] = INVALID_CELL
          continue
        }
        if (this.rtts !== undefined && this.impossibleCount(i) > tolerated) {
          this.flags[i] = RULED_OUT
          continue
        }
        if ((this.scores[i] as number) < threshold || node.stake <= 0n) continue
        if (certified !== undefined && !certified.has(i)) continue
        const g = groupOf.add(key)
        if (g === sums.length) {
          sums.push(0n)
          atCap.push(0)
          this.groupKeys.push(key)
        }
        this.groups[i] = g
        // Weighted by score: a node answering a quarter of its challenges takes a quarter of its
        // stake's room in the cell (so, among nodes past vetting, answering more never lowers its
        // operator's weight). Not by the vetting factor: new identities would fill twice the room.
        // The nodes at the cap add stakeCap × the sum of their scores, multiplied once per group.
        const score = this.scores[i] as number
        if (node.stake < u.stakeCap) sums[g] = (sums[g] as bigint) + BigInt(score) * node.stake
        else atCap[g] = (atCap[g] as number) + score
      }
    }
    for (let g = 0; g < sums.length; g++) {
      const scores = atCap[g] as number
      if (scores > 0) sums[g] = (sums[g] as bigint) + u.stakeCap * BigInt(scores)
    }
    this.cellStakes = sums
    this.capWeights = new Array<bigint | undefined>(sums.length)
    this.overRoom = new Uint8Array(sums.length)
    for (let g = 0; g < sums.length; g++) if ((sums[g] as bigint) > this.cellRoom) this.overRoom[g] = 1
  }

  /** Observers whose probe rules node `i`'s registered cell out. */
  private impossibleCount(i: number): number {
    let count = 0
    for (let v = 0; v < this.observers.length; v++) {
      const at = v * this.size + i
      const rtt = this.rtts === undefined ? -1 : this.rtts.get(at)
      if (rtt >= 0 && (this.distances as CountTable).get(at) > FIBRE_KM_PER_RTT_MS * rtt) count++
    }
    return count
  }

  /** Node `i`'s stake weight: its capped stake, scaled down when its cell holds more than the cell cap. */
  private stakeWeightOf(i: number): bigint {
    const node = this.input.nodes[i] as RewardNode
    if (node.stake <= 0n) return 0n
    const u = this.params.uptime
    const capped = minOf(node.stake, u.stakeCap)
    const g = this.groups[i] as number
    if (g < 0 || u.cellStakeCap === undefined) return capped
    // Read a node's cell's stake only when it is over the room (a flag per cell: fewer cache misses).
    if (this.overRoom[g] !== 1) return capped
    const room = this.cellRoom
    if (node.stake < u.stakeCap) return (capped * room) / (this.cellStakes[g] as bigint)
    // At the cap: the same for every such node of the cell.
    let weight = this.capWeights[g]
    if (weight === undefined) {
      weight = (capped * room) / (this.cellStakes[g] as bigint)
      this.capWeights[g] = weight
    }
    return weight
  }

  private fraction(v: number, i: number): number {
    const at = v * this.size + i
    const c = this.challenges.get(at)
    return c === 0 ? 0 : divFloor(this.answered.get(at) * PPM_NUMBER, c)
  }

  /**
   * The node's weight: 0 below the threshold or when its place is void, else score × vetting factor
   * (bps) × its stake weight (with `hardware`, unrounded: linearBps × stake + (10,000 − linearBps) ×
   * certified stake).
   */
  private weight(i: number): {
    eligible: boolean
    stakeWeight: bigint
    certifiedStake: bigint
    vetting: boolean
    weight: bigint
  } {
    const node = this.input.nodes[i] as RewardNode
    const u = this.params.uptime
    const score = this.scores[i] as number
    const eligible =
      this.observers.length > 0 && score > 0 && score >= u.thresholdPpm && (this.flags[i] as number) === 0
    const vetting = this.input.epoch - node.registeredEpoch < u.vettingEpochs
    const factor = vetting ? BigInt(u.vettingFactorBps) : BPS
    const h = this.params.hardware
    if (h === undefined) {
      const stakeWeight = this.stakeWeightOf(i)
      const weight = eligible ? BigInt(score) * stakeWeight * factor : 0n
      return { eligible, stakeWeight, certifiedStake: 0n, vetting, weight }
    }
    const certifiedStake = this.certified?.has(i) === true ? this.stakeWeightOf(i) : 0n
    const stake = node.stake > 0n ? node.stake : 0n
    const unrounded = BigInt(h.linearBps) * stake + (BPS - BigInt(h.linearBps)) * certifiedStake
    const weight = eligible ? BigInt(score) * unrounded * factor : 0n
    return { eligible, stakeWeight: unrounded / BPS, certifiedStake, vetting, weight }
  }

  /** Weight per operator (lower-case), operators with weight only. */
  byOperator(): AccountAmounts {
    const u = this.params.uptime
    const threshold = Math.max(1, u.thresholdPpm)
    const full = Number(BPS)
    const vetted = u.vettingFactorBps
    if (this.observers.length === 0) return new AccountAmounts()
    const h = this.params.hardware
    const certified = this.certified ?? new Map()
    const linear = h?.linearBps ?? 0
    const cappedBps = BPS - BigInt(linear)
    // A node's weight from scoreFactor = score × factor (at most 10^10, exact as a number; times
    // linearBps at most 10^14): one bigint product a node, but for the few with certified hardware.
    const weightOf: (i: number, scoreFactor: number, stake: bigint) => bigint =
      h === undefined
        ? (i, scoreFactor) => BigInt(scoreFactor) * this.stakeWeightOf(i)
        : (i, scoreFactor, stake) =>
            certified.has(i)
              ? BigInt(scoreFactor) * (BigInt(linear) * stake + cappedBps * this.stakeWeightOf(i))
              : BigInt(scoreFactor * linear) * stake
    // Summed as adding each node's weight to its operator's in node order, built at once.
    return AccountAmounts.sumOf(this.size, (add) => {
      for (let i = 0; i < this.size; i++) {
        const score = this.scores[i] as number
        if (score < threshold || (this.flags[i] as number) !== 0) continue
        const node = this.input.nodes[i] as RewardNode
        if (node.stake <= 0n) continue
        const factor = this.input.epoch - node.registeredEpoch < u.vettingEpochs ? vetted : full
        if (factor === 0) continue
        add(lowerAddress(node.operator), weightOf(i, score * factor, node.stake))
      }
    })
  }

  explain(peerId: string): UptimeExplanation | undefined {
    const i = this.nodeIndex.get(peerId)
    if (i < 0) return undefined
    const node = this.input.nodes[i] as RewardNode
    const { eligible, stakeWeight, certifiedStake, vetting, weight } = this.weight(i)
    const g = this.groups[i] as number
    const impossible: UptimeExplanation['impossible'] = []
    for (let v = 0; v < this.observers.length && this.rtts !== undefined; v++) {
      const at = v * this.size + i
      const rttMs = this.rtts.get(at)
      const distanceKm = (this.distances as CountTable).get(at)
      const maxKm = FIBRE_KM_PER_RTT_MS * rttMs
      if (rttMs >= 0 && distanceKm > maxKm)
        impossible.push({ verifier: this.observers[v] as string, rttMs, distanceKm, maxKm })
    }
    return {
      peerId,
      operator: node.operator.toLowerCase() as `0x${string}`,
      cell: g < 0 ? null : cellOfKey(this.groupKeys[g] as number),
      invalidCell: this.flags[i] === INVALID_CELL,
      impossible,
      ruledOut: this.flags[i] === RULED_OUT,
      cellStake: g < 0 ? 0n : (this.cellStakes[g] as bigint) / PPM,
      verifiers: this.observers.map((verifier, v) => ({
        verifier,
        challenges: this.challenges.get(v * this.size + i),
        answered: this.answered.get(v * this.size + i),
        fractionPpm: this.fraction(v, i),
      })),
      scorePpm: this.scores[i] as number,
      eligible,
      stakeWeight,
      certifiedStake,
      hardware: this.certified?.get(i) ?? null,
      vetting,
      weight,
      reward: this.totalWeight > 0n ? (this.pool * weight) / this.totalWeight : 0n,
    }
  }

  list(): UptimeExplanation[] {
    return [...this.nodeIndex.keys].sort().map((peerId) => this.explain(peerId) as UptimeExplanation)
  }
}

/** `UptimeTable` flags: the registered cell is not an H3 cell; probes rule the cell out. */
const INVALID_CELL = 1
const RULED_OUT = 2

/** The resolution uptime cells are capped at: a node's cell counts as its parent at this resolution. */
export const UPTIME_CELL_RESOLUTION = 7

const TWO_24 = 2 ** 24
const TWO_45 = 2 ** 45

/**
 * A number naming the group of an H3 cell (15 lower-case hex digits) for the uptime cell cap: its
 * parent at resolution 7, or itself when it is coarser; -1 when the text is not an H3 cell index
 * (a structural check: mode 1, reserved bits 0, base cell below 122, digits 0 to 6 down to its
 * resolution and 7 below). The number is the base cell and the seven resolution-7 digits (a coarser
 * cell's digits end in 7s, so the resolution is implied): 28 bits, a small integer. Exact
 * arithmetic on the index's two halves, one pass over its characters: a million nodes take
 * milliseconds.
 */
export function cellKey(cell: string): number {
  if (cell.length !== 15 || cell.charCodeAt(0) !== 56 /* '8' */) return -1
  let hi = 0 // bits 48 to 59
  let lo = 0 // bits 0 to 47
  for (let i = 0; i < 15; i++) {
    const nibble = HEX_VALUE[cell.charCodeAt(i)] ?? -1
    if (nibble < 0) return -1
    if (i < 3) hi = hi * 16 + nibble
    else lo = lo * 16 + nibble
  }
  const res = (hi >> 4) & 0xf
  const base = ((hi & 0xf) << 3) | (Math.floor(lo / TWO_45) & 7)
  if (base >= 122) return -1
  // Digits 15 down to 8 (three bits each, the low 24 bits): 7 below the resolution, 0 to 6 above.
  let low = lo % TWO_24
  for (let r = 15; r > UPTIME_CELL_RESOLUTION; r--) {
    const digit = low & 7
    low >>>= 3
    if (r > res ? digit !== 7 : digit === 7) return -1
  }
  // Digits 7 down to 1: the resolution-7 part.
  const digits = Math.floor(lo / TWO_24) % 2 ** 21
  let rest = digits
  for (let r = UPTIME_CELL_RESOLUTION; r >= 1; r--) {
    const digit = rest & 7
    rest >>>= 3
    if (r > res ? digit !== 7 : digit === 7) return -1
  }
  return base * 2 ** 21 + digits
}

/** The H3 index (15 hex digits) a `cellKey` names. */
export function cellOfKey(key: number): string {
  const digits = key % 2 ** 21
  const base = Math.floor(key / 2 ** 21)
  // The resolution: 7 less the number of trailing 7 digits.
  let p = UPTIME_CELL_RESOLUTION
  for (let d = digits; p > 0 && (d & 7) === 7; d >>>= 3) p--
  const hi = 0x800 | (p << 4) | (base >> 3)
  const lo = (base & 7) * TWO_45 + digits * TWO_24 + (TWO_24 - 1)
  return hi.toString(16) + lo.toString(16).padStart(12, '0')
}

/** Each character code's hex value (lower case), -1 for anything else. */
const HEX_VALUE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < 16; i++) table['0123456789abcdef'.charCodeAt(i)] = i
  return table
})()

/** Largest count an observation may carry (so products of counts and ppm stay exact). */
const MAX_COUNT = 1_000_000
/** Most sensors one node's observation may carry. */
const MAX_SENSORS = 16
const PPM_NUMBER = Number(PPM)

/** The median (in place: sorts `values`); of an even count, the mean of the middle two rounded down; 0 of none. */
function median(values: Int32Array): number {
  const n = values.length
  if (n === 0) return 0
  if (n <= 16) {
    // Insertion sort: a few verifiers per node, a million nodes (no builtin call per node).
    for (let i = 1; i < n; i++) {
      const x = values[i] as number
      let j = i - 1
      for (; j >= 0 && (values[j] as number) > x; j--) values[j + 1] = values[j] as number
      values[j + 1] = x
    }
  } else values.sort()
  const mid = n >> 1
  if (n % 2 === 1) return values[mid] as number
  return divFloor((values[mid - 1] as number) + (values[mid] as number), 2)
}

/** The smaller of two bigints (`Math.min` takes numbers only). */
function minOf(a: bigint, b: bigint): bigint {
  return a < b ? a : b
}
