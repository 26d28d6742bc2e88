import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { z } from 'zod'
import { MAX_MAKERS } from '../chain/maker-key.js'
import { canonicalJson } from '../core/canonical-json.js'
import type { PeerVerifier } from '../mesh/peer-key.js'
import { type SignedEnvelope, verifyEnvelope } from '../mesh/wire-codec.js'
import {
  addPayouts,
  buildCumulativeTree,
  type CumulativeEntry,
  type CumulativeTree,
  computeEpochRewards,
  type EpochRewards,
  REWARD_SERVICES,
  type RewardInput,
  type RewardParams,
  rebateCapOf,
} from '../rewards/index.js'
import {
  BANDWIDTH_OBSERVATION,
  type BandwidthObservationBody,
  COMPUTE_OBSERVATION,
  type ComputeObservationBody,
  SENSOR_OBSERVATION,
  type SensorObservationBody,
  STORAGE_OBSERVATION,
  type StorageObservationBody,
  UPTIME_OBSERVATION,
  type UptimeObservationBody,
} from './observation.js'

/** An observation a bundle carries: uptime, compute, storage, bandwidth or sensor. */
export type BundleObservation =
  | SignedEnvelope<UptimeObservationBody>
  | SignedEnvelope<ComputeObservationBody>
  | SignedEnvelope<StorageObservationBody>
  | SignedEnvelope<BandwidthObservationBody>
  | SignedEnvelope<SensorObservationBody>

/**
 * The epoch bundle (docs/protocol.md, "Epoch bundle"): everything the reward function read for one
 * epoch, in one canonical JSON document whose sha2-256 digest is the `bundleDigest` posted with the
 * epoch's root. Anyone holding it recomputes the root: check the observations' signatures, check
 * the carried table against the previous root, run the reward function, add, build the tree.
 */

/** The JSON codec's multicodec code: bundle CIDs are CIDv1 json + sha2-256. */
const JSON_CODEC = 0x0200
const SHA2_256 = 0x12

const address = z.string().regex(/^0x[0-9a-f]{40}$/, 'a lower-case address')
const amount = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a decimal amount')
const peerId = z.string().min(1).max(128)
const hash = z.string().regex(/^0x[0-9a-f]{64}$/)

const paramsSchema = z
  .object({
    version: z.number().int().nonnegative(),
    serviceWeightsBps: z
      .object(Object.fromEntries(REWARD_SERVICES.map((s) => [s, z.number().int()])))
      .strict(),
    uptime: z
      .object({
        thresholdPpm: z.number().int(),
        stakeCap: amount,
        /** Absent in bundles made before the cell cap existed. */
        cellStakeCap: amount.optional(),
        vettingEpochs: z.number().int(),
        vettingFactorBps: z.number().int(),
      })
      .strict(),
    sensor: z.object({ cellCapacity: z.number().int() }).strict(),
    /** Absent in bundles made before the compute rebate cap, and in those with `work`. */
    compute: z.object({ rebateBps: z.number().int() }).strict().optional(),
    /** The rebate cap over all paid work; absent in bundles made before it. */
    work: z.object({ rebateBps: z.number().int() }).strict().optional(),
    /**
     * The approved makers (peer ids, in NetworkParams' order) and the share of uptime weight linear
     * in stake; absent in bundles made before certified hardware.
     */
    hardware: z
      .object({ makers: z.array(peerId).max(MAX_MAKERS), linearBps: z.number().int() })
      .strict()
      .optional(),
  })
  .strict()

const bundleSchema = z
  .object({
    v: z.literal(1),
    net: z.string().min(1).max(128),
    epoch: z.number().int().nonnegative(),
    /** The hash of the epoch's first block: the challenge schedule's seed. */
    seed: hash,
    emission: amount,
    params: paramsSchema,
    /** Registered nodes as of the epoch, sorted by peer id. */
    nodes: z.array(
      z
        .object({
          peerId,
          operator: address,
          stake: amount,
          registeredEpoch: z.number().int().nonnegative(),
          /** The registered H3 cell, hex; absent in bundles made before cells were recorded. */
          cell: z
            .string()
            .regex(/^[0-9a-f]{1,16}$/)
            .optional(),
        })
        .strict(),
    ),
    /** Active verifiers, sorted by peer id. */
    verifiers: z.array(z.object({ peerId, address }).strict()),
    /** Signed observations (uptime and compute), sorted by signer, type, node; one per signer, type and node. */
    observations: z.array(z.unknown()),
    /**
     * Payment fees burned in the epoch's blocks per provider, `[operator, decimal amount]` sorted by
     * operator (Payments' VoucherRedeemed events from the epoch's seed block to the block before the
     * next one's); present exactly when the parameter set has a compute rebate cap.
     */
    burns: z.array(z.tuple([address, amount])).optional(),
    /** The cumulative table after the previous epoch, sorted by account; its root is on-chain. */
    carried: z
      .object({
        root: hash.nullable(),
        entries: z.array(z.tuple([address, amount])),
      })
      .strict(),
  })
  .strict()

/** A parsed bundle (amounts still as decimal strings, as in the document). */
export type EpochBundle = z.infer<typeof bundleSchema>

/** What a leader puts in a bundle. */
export interface BundleParts {
  net: string
  epoch: number
  seed: string
  emission: bigint
  /**
   * The parameter set in force in the epoch as the chain holds it (NetworkParams' `paramsAt`, read
   * through `VerifierChain.paramsAt`); the bundle records it with its on-chain version.
   */
  params: RewardParams
  /** `cell`: the registered H3 cell in hex (the registry's uint64). */
  nodes: { peerId: string; operator: string; stake: bigint; registeredEpoch: number; cell?: string }[]
  verifiers: { peerId: string; address: string }[]
  observations: readonly BundleObservation[]
  /** Payment fees burned in the epoch per provider (the chain's `paymentFees`), for the rebate cap. */
  burns?: ReadonlyMap<string, bigint>
  carried: { root: string | null; entries: readonly CumulativeEntry[] }
}

/** An encoded bundle: the document, its canonical bytes, their sha2-256 digest and the CID. */
export interface EncodedBundle {
  bundle: EpochBundle
  bytes: Uint8Array
  /** 0x + 64 hex: the `bundleDigest` of PostRoot. */
  digest: `0x${string}`
  cid: string
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Builds the canonical bundle: nodes and verifiers sorted by peer id, observations of this epoch by
 * active verifiers only, one per verifier and node (the highest sequence number wins), sorted; the
 * carried table sorted by account.
 */
export function buildBundle(parts: BundleParts): EncodedBundle {
  const verifierIds = new Set(parts.verifiers.map((v) => v.peerId))
  const kept = new Map<string, BundleObservation>()
  for (const o of parts.observations) {
    if (o.body.epoch !== parts.epoch || !verifierIds.has(o.from)) continue
    const key = `${o.from}\n${o.type}\n${o.body.node}`
    const held = kept.get(key)
    if (held === undefined || o.seq > held.seq) kept.set(key, o)
  }
  const bundle: EpochBundle = {
    v: 1,
    net: parts.net,
    epoch: parts.epoch,
    seed: parts.seed.toLowerCase(),
    emission: parts.emission.toString(),
    params: {
      version: parts.params.version,
      serviceWeightsBps: { ...parts.params.serviceWeightsBps },
      uptime: {
        thresholdPpm: parts.params.uptime.thresholdPpm,
        stakeCap: parts.params.uptime.stakeCap.toString(),
        ...(parts.params.uptime.cellStakeCap === undefined
          ? {}
          : { cellStakeCap: parts.params.uptime.cellStakeCap.toString() }),
        vettingEpochs: parts.params.uptime.vettingEpochs,
        vettingFactorBps: parts.params.uptime.vettingFactorBps,
      },
      sensor: { ...parts.params.sensor },
      ...(parts.params.compute === undefined ? {} : { compute: { ...parts.params.compute } }),
      ...(parts.params.work === undefined ? {} : { work: { ...parts.params.work } }),
      ...(parts.params.hardware === undefined ? {} : { hardware: hardwareOf(parts.params.hardware) }),
    },
    nodes: parts.nodes
      .map((n) => ({
        peerId: n.peerId,
        operator: n.operator.toLowerCase(),
        stake: n.stake.toString(),
        registeredEpoch: n.registeredEpoch,
        ...(n.cell === undefined ? {} : { cell: n.cell.toLowerCase() }),
      }))
      .sort((a, b) => byString(a.peerId, b.peerId)),
    verifiers: parts.verifiers
      .map((v) => ({ peerId: v.peerId, address: v.address.toLowerCase() }))
      .sort((a, b) => byString(a.peerId, b.peerId)),
    observations: [...kept.keys()].sort(byString).map((k) => kept.get(k) as BundleObservation),
    // Listed with a rebate cap only (none given: nothing burned).
    ...(rebateCapOf(parts.params) === undefined ? {} : { burns: burnsList(parts.burns ?? new Map()) }),
    carried: {
      root: parts.carried.root?.toLowerCase() ?? null,
      entries: parts.carried.entries
        .map((e): [string, string] => [e.account.toLowerCase(), e.cumulativeAmount.toString()])
        .sort((a, b) => byString(a[0], b[0])),
    },
  }
  return encode(bundle)
}

/** Burns as a bundle lists them: lower-case operators, merged, above 0, sorted. */
function burnsList(burns: ReadonlyMap<string, bigint>): [string, string][] {
  const merged = new Map<string, bigint>()
  for (const [operator, amount] of burns) {
    const key = operator.toLowerCase()
    merged.set(key, (merged.get(key) ?? 0n) + amount)
  }
  return [...merged]
    .filter(([, amount]) => amount > 0n)
    .sort((a, b) => byString(a[0], b[0]))
    .map(([operator, amount]) => [operator, amount.toString()])
}

function encode(bundle: EpochBundle): EncodedBundle {
  const bytes = new TextEncoder().encode(canonicalJson(bundle))
  const digest = createHash('sha256').update(bytes).digest()
  return {
    bundle,
    bytes,
    digest: `0x${digest.toString('hex')}`,
    cid: CID.create(1, JSON_CODEC, createDigest(SHA2_256, digest)).toString(),
  }
}

/** The CID of a bundle digest (0x + 64 hex). */
export function bundleCid(digest: string): string {
  return CID.create(1, JSON_CODEC, createDigest(SHA2_256, Buffer.from(digest.slice(2), 'hex'))).toString()
}

/** Why a bundle was refused. */
export type BundleFault =
  | 'malformed'
  | 'not_canonical'
  | 'wrong_network'
  | 'not_sorted'
  | 'bad_observation'
  | 'carried_root_mismatch'
  | 'params_mismatch'

/**
 * How a bundle's parameter set differs from the chain's for its epoch: the first differing field,
 * e.g. `version 1, the chain's 2` or `uptime.thresholdPpm 250000, the chain's 900000`; undefined
 * when they are the same set with the same version.
 */
export function paramsDifference(bundle: RewardParams, chain: RewardParams): string | undefined {
  const fields: [string, unknown, unknown][] = [
    ['version', bundle.version, chain.version],
    ...REWARD_SERVICES.map((s): [string, unknown, unknown] => [
      `serviceWeightsBps.${s}`,
      bundle.serviceWeightsBps[s],
      chain.serviceWeightsBps[s],
    ]),
    ['uptime.thresholdPpm', bundle.uptime.thresholdPpm, chain.uptime.thresholdPpm],
    ['uptime.stakeCap', bundle.uptime.stakeCap, chain.uptime.stakeCap],
    ['uptime.cellStakeCap', bundle.uptime.cellStakeCap, chain.uptime.cellStakeCap],
    ['uptime.vettingEpochs', bundle.uptime.vettingEpochs, chain.uptime.vettingEpochs],
    ['uptime.vettingFactorBps', bundle.uptime.vettingFactorBps, chain.uptime.vettingFactorBps],
    ['sensor.cellCapacity', bundle.sensor.cellCapacity, chain.sensor.cellCapacity],
    ['compute.rebateBps', bundle.compute?.rebateBps, chain.compute?.rebateBps],
    ['work.rebateBps', bundle.work?.rebateBps, chain.work?.rebateBps],
    ['hardware.linearBps', bundle.hardware?.linearBps, chain.hardware?.linearBps],
  ]
  for (const [name, ours, theirs] of fields)
    if (ours !== theirs) return `${name} ${String(ours)}, the chain's ${String(theirs)}`
  return makersDifference(bundle.hardware?.makers, chain.hardware?.makers)
}

/** How two maker lists differ (the first maker only one lists, or their order); undefined: equal. */
function makersDifference(
  ours: readonly string[] | undefined,
  theirs: readonly string[] | undefined,
): string | undefined {
  // A group on one side only: `hardware.linearBps` differs already.
  if (ours === undefined || theirs === undefined) return undefined
  if (ours.length === theirs.length && ours.every((m, i) => m === theirs[i])) return undefined
  const chain = new Set(theirs)
  const extra = ours.find((m) => !chain.has(m))
  if (extra !== undefined) return `hardware.makers lists ${extra}, the chain's does not`
  const bundle = new Set(ours)
  const missing = theirs.find((m) => !bundle.has(m))
  if (missing !== undefined) return `hardware.makers lacks ${missing}, which the chain's lists`
  return "hardware.makers in another order than the chain's"
}

/** A copy of a parameter set's hardware group (the bundle's and the reward function's share no array). */
function hardwareOf(h: NonNullable<RewardParams['hardware']>): { makers: string[]; linearBps: number } {
  return { makers: [...h.makers], linearBps: h.linearBps }
}

/** A checked bundle, ready to settle. */
export interface CheckedBundle extends EncodedBundle {
  input: RewardInput
  params: RewardParams
  carried: CumulativeEntry[]
}

/**
 * Checks a bundle received as bytes: JSON of the bundle's shape, in canonical form (so its digest
 * is the one true digest of its content), of `network`, every list sorted and without duplicates,
 * the parameter set equal to `params` when given (the chain's set for the bundle's epoch, version
 * included: `params_mismatch` otherwise, so a leader cannot pick its own), every observation a
 * valid signed observation of this epoch by a listed verifier, and the carried table's root equal to
 * `previousRoot` (the chain's root of the previous epoch; null for the first epoch).
 */
export function checkBundle(
  bytes: Uint8Array,
  options: { network: string; verifier: PeerVerifier; previousRoot: string | null; params?: RewardParams },
): { ok: true; bundle: CheckedBundle } | { ok: false; fault: BundleFault; detail?: string } {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return { ok: false, fault: 'malformed', detail: 'not UTF-8 JSON' }
  }
  const parsed = bundleSchema.safeParse(json)
  if (!parsed.success) return { ok: false, fault: 'malformed', detail: parsed.error.issues[0]?.message ?? '' }
  const bundle = parsed.data
  const encoded = encode(bundle)
  if (Buffer.compare(Buffer.from(encoded.bytes), Buffer.from(bytes)) !== 0)
    return { ok: false, fault: 'not_canonical' }
  if (bundle.net !== options.network) return { ok: false, fault: 'wrong_network' }
  const ascending = (keys: string[]) => keys.every((k, i) => i === 0 || (keys[i - 1] as string) < k)
  if (!ascending(bundle.nodes.map((n) => n.peerId)))
    return { ok: false, fault: 'not_sorted', detail: 'nodes' }
  if (!ascending(bundle.verifiers.map((v) => v.peerId)))
    return { ok: false, fault: 'not_sorted', detail: 'verifiers' }
  if (!ascending(bundle.carried.entries.map((e) => e[0])))
    return { ok: false, fault: 'not_sorted', detail: 'carried' }
  if (bundle.burns !== undefined && !ascending(bundle.burns.map((e) => e[0])))
    return { ok: false, fault: 'not_sorted', detail: 'burns' }
  if (bundle.params.compute !== undefined && bundle.params.work !== undefined)
    return { ok: false, fault: 'malformed', detail: 'params.work replaces params.compute: not both' }
  if ((bundle.burns === undefined) !== (rebateCapOf(bundle.params) === undefined))
    return { ok: false, fault: 'malformed', detail: 'burns go with a rebate cap, and only with one' }
  const params: RewardParams = {
    version: bundle.params.version,
    serviceWeightsBps: bundle.params.serviceWeightsBps as RewardParams['serviceWeightsBps'],
    uptime: {
      thresholdPpm: bundle.params.uptime.thresholdPpm,
      stakeCap: BigInt(bundle.params.uptime.stakeCap),
      ...(bundle.params.uptime.cellStakeCap === undefined
        ? {}
        : { cellStakeCap: BigInt(bundle.params.uptime.cellStakeCap) }),
      vettingEpochs: bundle.params.uptime.vettingEpochs,
      vettingFactorBps: bundle.params.uptime.vettingFactorBps,
    },
    sensor: { ...bundle.params.sensor },
    ...(bundle.params.compute === undefined ? {} : { compute: { ...bundle.params.compute } }),
    ...(bundle.params.work === undefined ? {} : { work: { ...bundle.params.work } }),
    ...(bundle.params.hardware === undefined ? {} : { hardware: hardwareOf(bundle.params.hardware) }),
  }
  if (options.params !== undefined) {
    const difference = paramsDifference(params, options.params)
    if (difference !== undefined) return { ok: false, fault: 'params_mismatch', detail: difference }
  }

  const verifiers = new Set(bundle.verifiers.map((v) => v.peerId))
  const uptime: RewardInput['uptime'][number][] = []
  const keys: string[] = []
  const compute: NonNullable<RewardInput['compute']>[number][] = []
  const storage: NonNullable<RewardInput['storage']>[number][] = []
  const bandwidth: NonNullable<RewardInput['bandwidth']>[number][] = []
  const sensor: NonNullable<RewardInput['sensor']>[number][] = []
  const verify = { network: options.network, verifier: options.verifier }
  for (const value of bundle.observations) {
    const type = (value as { type?: unknown } | null)?.type
    const checked =
      type === COMPUTE_OBSERVATION.type
        ? verifyEnvelope(value, COMPUTE_OBSERVATION, verify)
        : type === STORAGE_OBSERVATION.type
          ? verifyEnvelope(value, STORAGE_OBSERVATION, verify)
          : type === BANDWIDTH_OBSERVATION.type
            ? verifyEnvelope(value, BANDWIDTH_OBSERVATION, verify)
            : type === SENSOR_OBSERVATION.type
              ? verifyEnvelope(value, SENSOR_OBSERVATION, verify)
              : verifyEnvelope(value, UPTIME_OBSERVATION, verify)
    if (!checked.ok) return { ok: false, fault: 'bad_observation', detail: checked.reason }
    const o = checked.envelope
    if (!verifiers.has(o.from))
      return { ok: false, fault: 'bad_observation', detail: `${o.from} is not a listed verifier` }
    if (o.body.epoch !== bundle.epoch) return { ok: false, fault: 'bad_observation', detail: 'another epoch' }
    keys.push(`${o.from}\n${o.type}\n${o.body.node}`)
    if ('sensors' in o.body)
      sensor.push({
        verifier: o.from,
        node: o.body.node,
        cell: o.body.cell,
        probe: o.body.probe,
        sensors: o.body.sensors,
      })
    else if ('downloaders' in o.body)
      bandwidth.push({
        verifier: o.from,
        node: o.body.node,
        bytes: o.body.bytes,
        downloaders: o.body.downloaders,
      })
    else if ('passed' in o.body)
      storage.push({
        verifier: o.from,
        node: o.body.node,
        challenges: o.body.challenges,
        passed: o.body.passed,
        bytes: o.body.bytes,
      })
    else if ('challenges' in o.body)
      uptime.push({
        verifier: o.from,
        node: o.body.node,
        challenges: o.body.challenges,
        answered: o.body.answered,
        ...(o.body.probe === undefined ? {} : { probe: o.body.probe }),
      })
    else
      compute.push({
        verifier: o.from,
        node: o.body.node,
        jobs: o.body.jobs,
        value: BigInt(o.body.value),
        fraud: o.body.fraud,
      })
  }
  if (!ascending(keys)) return { ok: false, fault: 'not_sorted', detail: 'observations' }

  const carried = bundle.carried.entries.map(([account, value]) => ({
    account: account as `0x${string}`,
    cumulativeAmount: BigInt(value),
  }))
  const carriedRoot = carried.length === 0 ? null : buildCumulativeTree(carried).root
  if (carriedRoot !== bundle.carried.root || carriedRoot !== (options.previousRoot?.toLowerCase() ?? null)) {
    return { ok: false, fault: 'carried_root_mismatch' }
  }
  const input: RewardInput = {
    epoch: bundle.epoch,
    emission: BigInt(bundle.emission),
    nodes: bundle.nodes.map((n) => ({
      peerId: n.peerId,
      operator: n.operator as `0x${string}`,
      stake: BigInt(n.stake),
      registeredEpoch: n.registeredEpoch,
      ...(n.cell === undefined ? {} : { cell: n.cell }),
    })),
    verifiers: bundle.verifiers.map((v) => v.peerId),
    uptime,
    compute,
    storage,
    bandwidth,
    sensor,
    ...(bundle.burns === undefined
      ? {}
      : { burned: bundle.burns.map(([operator, value]) => [operator, BigInt(value)] as const) }),
  }
  return { ok: true, bundle: { ...encoded, input, params, carried } }
}

/** What a bundle settles to: the epoch's rewards, the new cumulative table, its tree and root. */
export interface Settlement {
  rewards: EpochRewards
  entries: CumulativeEntry[]
  tree: CumulativeTree
  root: `0x${string}`
  /** The sum of all cumulative amounts: PostRoot's `totalCumulative`. */
  totalCumulative: bigint
}

/** Runs the reward function on a checked bundle and builds the new cumulative tree. */
export function settleBundle(bundle: CheckedBundle): Settlement {
  const rewards = computeEpochRewards(bundle.input, bundle.params)
  const added = addPayouts(bundle.carried, rewards.payouts)
  // A tree needs a leaf: a table that would be empty holds the zero address with nothing instead
  // (and carries it on, so that the next bundle's carried table has the posted root).
  const entries: CumulativeEntry[] = added.length > 0 ? added : [{ account: ZERO, cumulativeAmount: 0n }]
  const tree = buildCumulativeTree(entries)
  let totalCumulative = 0n
  for (const e of entries) totalCumulative += e.cumulativeAmount
  return { rewards, entries, tree, root: tree.root, totalCumulative }
}

const ZERO: `0x${string}` = '0x0000000000000000000000000000000000000000'
