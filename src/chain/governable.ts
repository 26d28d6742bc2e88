import { decodeFunctionData, encodeFunctionData, formatUnits, type Hex, parseUnits } from 'viem'
import { InvalidArgumentError } from '../core/errors.js'
import {
  epochRewardsAbi,
  meshGovernorAbi,
  meshTimelockAbi,
  networkParamsAbi,
  nodeRegistryAbi,
} from './abi/index.js'
import type { GovernanceCall } from './actions/propose.js'
import type { ContractAddresses } from './client.js'
import { MAX_MAKERS, makerKeyOfPeerId, makerPeerIdOf, sortMakerKeys } from './maker-key.js'
import type { NetworkParamsStruct } from './network-params.js'

/** How a governable value is written on the command line and shown. */
export type GovernableUnit = 'bps' | 'ppm' | 'MESH' | 'seconds' | 'blocks' | 'epochs' | 'count' | 'percent'

/** One parameter a proposal can set, by its documented key (docs/governance.md). */
export interface GovernableKey {
  key: string
  /** The contract that holds it (owned by the timelock). */
  contract: 'NetworkParams' | 'NodeRegistry' | 'EpochRewards' | 'MeshGovernor' | 'MeshTimelock'
  unit: GovernableUnit
  min: bigint
  max: bigint
  description: string
}

const U32 = 2n ** 32n - 1n
const U48 = 2n ** 48n - 1n
const U128 = 2n ** 128n - 1n
const YEAR = 365n * 24n * 3_600n

const key = (
  k: string,
  contract: GovernableKey['contract'],
  unit: GovernableUnit,
  min: bigint,
  max: bigint,
  description: string,
): GovernableKey => ({ key: k, contract, unit, min, max, description })

/** Every parameter governance can change, in the order `gov params` shows them. */
export const GOVERNABLE_KEYS: readonly GovernableKey[] = [
  key('weights.uptime', 'NetworkParams', 'bps', 0n, 10_000n, "uptime's share of each epoch's emission"),
  key('weights.compute', 'NetworkParams', 'bps', 0n, 10_000n, "compute's share of each epoch's emission"),
  key('weights.storage', 'NetworkParams', 'bps', 0n, 10_000n, "storage's share of each epoch's emission"),
  key('weights.relay', 'NetworkParams', 'bps', 0n, 10_000n, "relay's share of each epoch's emission"),
  key('weights.sensor', 'NetworkParams', 'bps', 0n, 10_000n, "sensor data's share of each epoch's emission"),
  key(
    'uptime.thresholdPpm',
    'NetworkParams',
    'ppm',
    0n,
    1_000_000n,
    'uptime score below which a node earns no uptime reward',
  ),
  key('uptime.stakeCap', 'NetworkParams', 'MESH', 1n, U128, 'stake above this adds no uptime weight'),
  key(
    'uptime.cellStakeCap',
    'NetworkParams',
    'MESH',
    1n,
    U128,
    'capped stake one H3 cell counts in all (at least uptime.stakeCap)',
  ),
  key('uptime.vettingEpochs', 'NetworkParams', 'epochs', 0n, U32, 'epochs a new node is vetted for'),
  key('uptime.vettingFactorBps', 'NetworkParams', 'bps', 0n, 10_000n, 'weight of a node being vetted'),
  key('sensor.cellCapacity', 'NetworkParams', 'count', 1n, U32, 'sensors paid per H3 cell and epoch'),
  key(
    'compute.verifyMinPpm',
    'NetworkParams',
    'ppm',
    1n,
    1_000_000n,
    'lowest re-run probability of a compute job',
  ),
  key(
    'compute.verifyMaxPpm',
    'NetworkParams',
    'ppm',
    1n,
    1_000_000n,
    'highest re-run probability of a compute job',
  ),
  key(
    'work.rebateBps',
    'NetworkParams',
    'bps',
    0n,
    9_999n,
    "share of its burned payment fees an operator's compute, storage and relay rewards may reach together",
  ),
  key(
    'hardware.linearBps',
    'NetworkParams',
    'bps',
    0n,
    10_000n,
    "share of a node's uptime weight linear in its stake (the rest needs a certified device)",
  ),
  key('registry.minNodeStake', 'NodeRegistry', 'MESH', 1n, U128, 'least stake a node registers with'),
  key('registry.minVerifierStake', 'NodeRegistry', 'MESH', 1n, U128, 'least stake of an active verifier'),
  key(
    'registry.unbondingPeriod',
    'NodeRegistry',
    'seconds',
    0n,
    YEAR,
    'wait between unbonding and withdrawing stake',
  ),
  key(
    'registry.quorum',
    'NodeRegistry',
    'count',
    1n,
    U32,
    'verifier signatures a root, revoke or slash needs',
  ),
  key('registry.maxVerifiers', 'NodeRegistry', 'count', 1n, U32, 'seats in the verifier set'),
  key(
    'rewards.disputeWindow',
    'EpochRewards',
    'blocks',
    0n,
    1_000_000n,
    'blocks a posted root waits before claims',
  ),
  key('gov.votingDelay', 'MeshGovernor', 'seconds', 1n, U48, 'wait from a proposal to the start of its vote'),
  key('gov.votingPeriod', 'MeshGovernor', 'seconds', 1n, U32, 'how long a vote lasts'),
  key('gov.proposalThreshold', 'MeshGovernor', 'MESH', 0n, U128, 'votes an account needs to propose'),
  key(
    'gov.quorumPercent',
    'MeshGovernor',
    'percent',
    1n,
    100n,
    'share of the supply that must vote for or abstain',
  ),
  key(
    'timelock.delay',
    'MeshTimelock',
    'seconds',
    0n,
    YEAR,
    'wait from queueing a passed proposal to executing it',
  ),
]

const BY_KEY = new Map(GOVERNABLE_KEYS.map((k) => [k.key, k]))

/** Every governable value now (bigints in the unit's base: MESH in base units). */
export type GovernableValues = Record<string, bigint>

/** NetworkParams struct fields by key. */
const PARAM_FIELDS: Record<string, keyof NetworkParamsStruct> = {
  'weights.uptime': 'uptimeWeightBps',
  'weights.compute': 'computeWeightBps',
  'weights.storage': 'storageWeightBps',
  'weights.relay': 'relayWeightBps',
  'weights.sensor': 'sensorWeightBps',
  'uptime.thresholdPpm': 'uptimeThresholdPpm',
  'uptime.stakeCap': 'stakeCap',
  'uptime.vettingEpochs': 'vettingEpochs',
  'uptime.vettingFactorBps': 'vettingFactorBps',
  'sensor.cellCapacity': 'sensorCellCapacity',
  'uptime.cellStakeCap': 'cellStakeCap',
  'compute.verifyMinPpm': 'computeVerifyMinPpm',
  'compute.verifyMaxPpm': 'computeVerifyMaxPpm',
  'work.rebateBps': 'workRebateBps',
  'hardware.linearBps': 'linearBps',
}

/** The keyed values of a NetworkParams struct. */
export function paramsToValues(p: NetworkParamsStruct): GovernableValues {
  const out: GovernableValues = {}
  for (const [k, field] of Object.entries(PARAM_FIELDS)) out[k] = BigInt(p[field])
  return out
}

function valuesToParams(v: GovernableValues): NetworkParamsStruct {
  const out: Record<string, number | bigint> = {}
  for (const [k, field] of Object.entries(PARAM_FIELDS)) {
    const value = v[k] ?? 0n
    out[field] = field === 'stakeCap' || field === 'cellStakeCap' ? value : Number(value)
  }
  return out as unknown as NetworkParamsStruct
}

/** A value in its unit, for people: `2,000 MESH`, `4000 bps`, `30 seconds`. */
export function formatGovernable(k: string, value: bigint): string {
  const unit = BY_KEY.get(k)?.unit
  if (unit === 'MESH') return `${formatUnits(value, 18)} MESH`
  if (unit === 'count' || unit === undefined) return value.toString()
  return `${value} ${unit === 'percent' ? '%' : unit}`
}

const keyHint = () => `Known keys: ${GOVERNABLE_KEYS.map((k) => k.key).join(', ')}`

/**
 * Parses `KEY=VALUE` settings from the command line: MESH amounts as decimal MESH (`2000`,
 * `1500.5`), basis points also as a percentage (`35%` = 3500 bps), everything else as a whole
 * number in the key's unit. Each key once.
 *
 * @throws InvalidArgumentError for an unknown key, a malformed or out-of-range value, a repeat, or
 * no settings at all (unless `options.allowNone`: the proposal changes the maker list instead).
 */
export function parseGovernableSettings(
  settings: readonly string[],
  options: { allowNone?: boolean } = {},
): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const setting of settings) {
    const eq = setting.indexOf('=')
    const k = eq < 0 ? setting : setting.slice(0, eq)
    const text = eq < 0 ? '' : setting.slice(eq + 1).trim()
    const info = BY_KEY.get(k.trim())
    if (!info) {
      throw new InvalidArgumentError(`--set: unknown parameter "${k}"`, {
        hint: keyHint(),
        details: { key: k },
      })
    }
    if (eq < 0 || text === '') {
      throw new InvalidArgumentError(`--set ${info.key} needs a value: ${info.key}=VALUE`)
    }
    if (out.has(info.key)) throw new InvalidArgumentError(`--set ${info.key} is given twice`)
    let value: bigint
    if (info.unit === 'MESH' && /^\d{1,30}(\.\d{1,18})?$/.test(text)) value = parseUnits(text, 18)
    else if (info.unit === 'bps' && /^\d{1,3}(\.\d{1,2})?%$/.test(text))
      value = parseUnits(text.slice(0, -1), 2)
    else if (/^\d{1,30}$/.test(text)) value = BigInt(text)
    else {
      const form =
        info.unit === 'MESH' ? 'an amount of MESH such as 2000 or 1500.5' : `a whole number of ${info.unit}`
      throw new InvalidArgumentError(`--set ${info.key} must be ${form}, got "${text}"`, {
        details: { key: info.key },
      })
    }
    if (value < info.min || value > info.max) {
      throw new InvalidArgumentError(
        `--set ${info.key} must be from ${formatGovernable(info.key, info.min)} to ${formatGovernable(info.key, info.max)}, got ${formatGovernable(info.key, value)}`,
        { details: { key: info.key } },
      )
    }
    out.set(info.key, value)
  }
  if (out.size === 0 && options.allowNone !== true)
    throw new InvalidArgumentError(
      'a proposal needs at least one --set KEY=VALUE, --approve-maker PEERID or --revoke-maker PEERID',
      { hint: keyHint() },
    )
  return out
}

/** The hardware makers a proposal approves and revokes: raw Ed25519 keys (see src/chain/maker-key.ts). */
export interface MakerChanges {
  approve: readonly Hex[]
  revoke: readonly Hex[]
}

/**
 * Parses the makers a proposal approves and revokes (peer ids, `12D3KooW…`), before anything is
 * read from the chain.
 *
 * @throws InvalidArgumentError for a maker that is not an Ed25519 key's peer id, or one named twice
 * (also once to approve and once to revoke).
 */
export function parseMakerChanges(approve: readonly string[], revoke: readonly string[]): MakerChanges {
  const seen = new Set<Hex>()
  const parse = (peerIds: readonly string[]) =>
    peerIds.map((peerId) => {
      const k = makerKeyOfPeerId(peerId.trim())
      if (seen.has(k))
        throw new InvalidArgumentError(`maker ${makerPeerIdOf(k)} is named twice`, {
          hint: 'Name each maker once, with either --approve-maker or --revoke-maker',
          details: { maker: makerPeerIdOf(k) },
        })
      seen.add(k)
      return k
    })
  return { approve: parse(approve), revoke: parse(revoke) }
}

/** What a proposal does to the maker list (peer ids). */
export interface MakerListChange {
  approved: string[]
  revoked: string[]
  /** The whole list after it, in NetworkParams' order. */
  makers: string[]
}

/**
 * The maker list `current` (NetworkParams' newest, raw keys) becomes with `change` applied, sorted as
 * NetworkParams keeps it.
 *
 * @throws InvalidArgumentError when a maker to approve is approved already, one to revoke is not
 * approved, or the list would be longer than {@link MAX_MAKERS}.
 */
export function applyMakerChanges(current: readonly Hex[], change: MakerChanges): Hex[] {
  const list = new Set(sortMakerKeys(current))
  for (const k of sortMakerKeys(change.revoke)) {
    if (!list.has(k))
      throw new InvalidArgumentError(
        `maker ${makerPeerIdOf(k)} is not approved: there is nothing to revoke`,
        {
          hint: 'See the approved makers with `meshwork gov params`',
          details: { maker: makerPeerIdOf(k) },
        },
      )
    list.delete(k)
  }
  for (const k of sortMakerKeys(change.approve)) {
    if (list.has(k))
      throw new InvalidArgumentError(`maker ${makerPeerIdOf(k)} is approved already`, {
        hint: 'See the approved makers with `meshwork gov params`',
        details: { maker: makerPeerIdOf(k) },
      })
    list.add(k)
  }
  if (list.size > MAX_MAKERS)
    throw new InvalidArgumentError(`the maker list would hold ${list.size} makers, more than ${MAX_MAKERS}`, {
      hint: 'Revoke makers that no longer ship devices in the same proposal',
    })
  return sortMakerKeys([...list])
}

/** One parameter a proposal changes. */
export interface ParameterChange {
  key: string
  from: bigint
  to: bigint
}

/**
 * Turns changes into the calls a proposal makes: one `setParams` with the whole new set for any
 * NetworkParams keys (so several weights change together, and on the version they were read from),
 * then one `setMakers` with the whole new maker list when `makers` approves or revokes any (on the
 * version `setParams` makes, if any: the timelock runs the calls in order), one `setVerifierLimits`
 * for quorum and seats together, one call per other setter. Checks across keys what the contracts
 * check (weights sum to 10,000, quorum at most the seats, the compute bounds in order, the maker
 * list), so a proposal that would fail at execution is refused before it is sent.
 *
 * @throws InvalidArgumentError naming the rule that fails.
 */
export function encodeGovernableChanges(
  current: { values: GovernableValues; paramsVersion: number; makers?: readonly Hex[] },
  changes: ReadonlyMap<string, bigint>,
  contracts: Pick<
    ContractAddresses,
    'NetworkParams' | 'NodeRegistry' | 'EpochRewards' | 'MeshGovernor' | 'MeshTimelock'
  >,
  makers?: MakerChanges,
): { calls: GovernanceCall[]; changes: ParameterChange[]; makers?: MakerListChange } {
  const next: GovernableValues = { ...current.values }
  const list: ParameterChange[] = []
  for (const [k, to] of changes) {
    list.push({ key: k, from: current.values[k] ?? 0n, to })
    next[k] = to
  }
  const changed = (prefixes: readonly string[]) =>
    [...changes.keys()].some((k) => prefixes.some((p) => k === p))
  const calls: GovernanceCall[] = []
  const paramKeys = Object.keys(PARAM_FIELDS)
  if (changed(paramKeys)) {
    const sum = ['uptime', 'compute', 'storage', 'relay', 'sensor'].reduce(
      (s, w) => s + (next[`weights.${w}`] ?? 0n),
      0n,
    )
    if (sum !== 10_000n) {
      throw new InvalidArgumentError(`the service weights would sum to ${sum} bps, not 10000 (100%)`, {
        hint: 'Set several weights in one proposal so that they sum to 10000, e.g. --set weights.uptime=3500 --set weights.compute=3500',
        details: { sum: sum.toString() },
      })
    }
    if ((next['uptime.cellStakeCap'] ?? 0n) < (next['uptime.stakeCap'] ?? 0n)) {
      throw new InvalidArgumentError('uptime.cellStakeCap would be below uptime.stakeCap', {
        hint: 'Raise uptime.cellStakeCap in the same proposal, e.g. --set uptime.cellStakeCap=<at least the stake cap>',
      })
    }
    if ((next['compute.verifyMinPpm'] ?? 0n) > (next['compute.verifyMaxPpm'] ?? 0n)) {
      throw new InvalidArgumentError('compute.verifyMinPpm would be above compute.verifyMaxPpm')
    }
    calls.push({
      target: contracts.NetworkParams,
      data: encodeFunctionData({
        abi: networkParamsAbi,
        functionName: 'setParams',
        args: [current.paramsVersion, valuesToParams(next)],
      }),
    })
  }
  let makerList: MakerListChange | undefined
  if (makers !== undefined && makers.approve.length + makers.revoke.length > 0) {
    if (current.makers === undefined)
      throw new InvalidArgumentError('changing the maker list needs the current list (getGovernableValues)')
    const list = applyMakerChanges(current.makers, makers)
    // On the version the setParams call above makes, when there is one.
    const base = current.paramsVersion + (calls.length === 0 ? 0 : 1)
    calls.push({
      target: contracts.NetworkParams,
      data: encodeFunctionData({
        abi: networkParamsAbi,
        functionName: 'setMakers',
        args: [base, list],
      }),
    })
    makerList = {
      approved: sortMakerKeys(makers.approve).map(makerPeerIdOf),
      revoked: sortMakerKeys(makers.revoke).map(makerPeerIdOf),
      makers: list.map(makerPeerIdOf),
    }
  }
  const single = (k: string, target: `0x${string}`, data: Hex) => {
    if (changes.has(k)) calls.push({ target, data })
  }
  const v = (k: string) => next[k] ?? 0n
  single(
    'registry.minNodeStake',
    contracts.NodeRegistry,
    encodeFunctionData({
      abi: nodeRegistryAbi,
      functionName: 'setMinNodeStake',
      args: [v('registry.minNodeStake')],
    }),
  )
  single(
    'registry.minVerifierStake',
    contracts.NodeRegistry,
    encodeFunctionData({
      abi: nodeRegistryAbi,
      functionName: 'setMinVerifierStake',
      args: [v('registry.minVerifierStake')],
    }),
  )
  single(
    'registry.unbondingPeriod',
    contracts.NodeRegistry,
    encodeFunctionData({
      abi: nodeRegistryAbi,
      functionName: 'setUnbondingPeriod',
      args: [v('registry.unbondingPeriod')],
    }),
  )
  if (changed(['registry.quorum', 'registry.maxVerifiers'])) {
    if (v('registry.quorum') > v('registry.maxVerifiers')) {
      throw new InvalidArgumentError(
        `registry.quorum (${v('registry.quorum')}) would be above registry.maxVerifiers (${v('registry.maxVerifiers')})`,
      )
    }
    calls.push({
      target: contracts.NodeRegistry,
      data: encodeFunctionData({
        abi: nodeRegistryAbi,
        functionName: 'setVerifierLimits',
        args: [Number(v('registry.quorum')), Number(v('registry.maxVerifiers'))],
      }),
    })
  }
  single(
    'rewards.disputeWindow',
    contracts.EpochRewards,
    encodeFunctionData({
      abi: epochRewardsAbi,
      functionName: 'setDisputeWindow',
      args: [Number(v('rewards.disputeWindow'))],
    }),
  )
  single(
    'gov.votingDelay',
    contracts.MeshGovernor,
    encodeFunctionData({
      abi: meshGovernorAbi,
      functionName: 'setVotingDelay',
      args: [Number(v('gov.votingDelay'))],
    }),
  )
  single(
    'gov.votingPeriod',
    contracts.MeshGovernor,
    encodeFunctionData({
      abi: meshGovernorAbi,
      functionName: 'setVotingPeriod',
      args: [Number(v('gov.votingPeriod'))],
    }),
  )
  single(
    'gov.proposalThreshold',
    contracts.MeshGovernor,
    encodeFunctionData({
      abi: meshGovernorAbi,
      functionName: 'setProposalThreshold',
      args: [v('gov.proposalThreshold')],
    }),
  )
  single(
    'gov.quorumPercent',
    contracts.MeshGovernor,
    encodeFunctionData({
      abi: meshGovernorAbi,
      functionName: 'updateQuorumNumerator',
      args: [v('gov.quorumPercent')],
    }),
  )
  single(
    'timelock.delay',
    contracts.MeshTimelock,
    encodeFunctionData({ abi: meshTimelockAbi, functionName: 'updateDelay', args: [v('timelock.delay')] }),
  )
  return { calls, changes: list, ...(makerList === undefined ? {} : { makers: makerList }) }
}

/** What one proposal call does, decoded: the keys it sets, or the raw call when it is not a setter. */
export interface DecodedCall {
  contract: string
  functionName: string
  /** Keyed values the call sets (all of a NetworkParams set), empty for an unknown call. */
  values: GovernableValues
  /** For `setParams` and `setMakers`: the version the new set or list replaces. */
  baseVersion?: number
  /** For `setMakers`: the whole new maker list, as peer ids. */
  makers?: string[]
}

/** Decodes a proposal's call against the network's governable contracts (for listing proposals). */
export function decodeGovernanceCall(call: GovernanceCall, contracts: ContractAddresses): DecodedCall {
  const target = call.target.toLowerCase()
  const named = Object.entries(contracts).find(([, a]) => a.toLowerCase() === target)?.[0] ?? call.target
  const abis: Record<string, readonly unknown[]> = {
    NetworkParams: networkParamsAbi,
    NodeRegistry: nodeRegistryAbi,
    EpochRewards: epochRewardsAbi,
    MeshGovernor: meshGovernorAbi,
    MeshTimelock: meshTimelockAbi,
  }
  const abi = abis[named]
  if (!abi) return { contract: named, functionName: call.data.slice(0, 10), values: {} }
  let decoded: { functionName: string; args: readonly unknown[] }
  try {
    decoded = decodeFunctionData({ abi: abi as never, data: call.data }) as typeof decoded
  } catch {
    return { contract: named, functionName: call.data.slice(0, 10), values: {} }
  }
  const [a0, a1] = decoded.args ?? []
  const values: GovernableValues = {}
  const one = (k: string) => {
    values[k] = BigInt(a0 as bigint | number)
  }
  switch (decoded.functionName) {
    case 'setParams':
      return {
        contract: named,
        functionName: 'setParams',
        values: paramsToValues(a1 as NetworkParamsStruct),
        baseVersion: Number(a0),
      }
    case 'setMakers':
      return {
        contract: named,
        functionName: 'setMakers',
        values: {},
        baseVersion: Number(a0),
        makers: (a1 as readonly Hex[]).map(makerPeerIdOf),
      }
    case 'setMinNodeStake':
      one('registry.minNodeStake')
      break
    case 'setMinVerifierStake':
      one('registry.minVerifierStake')
      break
    case 'setUnbondingPeriod':
      one('registry.unbondingPeriod')
      break
    case 'setVerifierLimits':
      values['registry.quorum'] = BigInt(a0 as number)
      values['registry.maxVerifiers'] = BigInt(a1 as number)
      break
    case 'setDisputeWindow':
      one('rewards.disputeWindow')
      break
    case 'setVotingDelay':
      one('gov.votingDelay')
      break
    case 'setVotingPeriod':
      one('gov.votingPeriod')
      break
    case 'setProposalThreshold':
      one('gov.proposalThreshold')
      break
    case 'updateQuorumNumerator':
      one('gov.quorumPercent')
      break
    case 'updateDelay':
      one('timelock.delay')
      break
  }
  return { contract: named, functionName: decoded.functionName, values }
}
