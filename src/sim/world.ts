import { createHash, sign } from 'node:crypto'
import type { PeerSigner } from '../mesh/peer-key.js'
import type { LatencyModel } from '../mesh/sim-network.js'
import { networkIdOf } from '../mesh/wire-codec.js'
import { DEFAULT_REWARD_PARAMS, type EmissionSchedule, type RewardParams } from '../rewards/index.js'
import type { SimJob } from './compute-jobs.js'
import { type Fleet, isOnline, type Span } from './fleet.js'
import { type Access, drawPlace, linkBetween, type Place } from './geography.js'
import { ed25519PeerIds, ed25519PrivateKey, ed25519PublicKey, peerIdOfPublicKey } from './peer-ids.js'
import { seedBytes, stream } from './random.js'
import type { SimStation } from './stations.js'
import type { StorageDemand } from './storage-files.js'

/** The network id simulated messages are bound to (chain 31337, a made-up NodeRegistry address). */
export const SIM_NETWORK_ID = networkIdOf({
  chainId: 31337,
  contracts: { NodeRegistry: `0x${'a2'.repeat(20)}` },
})

/** 10^18: base units in one MESH. */
export const MESH = 10n ** 18n

/** What a confirmed fraud slashes: the minimum node stake, as the verifiers' compute auditor signs. */
export const SLASH_AMOUNT = 1_000n * MESH

/**
 * The simulated network's one approved hardware maker (a fixed key): it certifies every honest
 * weather station, none of the spoofers' fake ones (a fake station has no device a maker made).
 */
export const SIM_MAKER: PeerSigner = signerFromSeed(
  new Uint8Array(createHash('sha256').update('meshwork/sim/maker/1').digest()),
)

/** The production defaults, with {@link SIM_MAKER} approved. */
const SIM_REWARD_PARAMS: RewardParams = Object.freeze({
  ...DEFAULT_REWARD_PARAMS,
  hardware: Object.freeze({
    makers: Object.freeze([SIM_MAKER.peerId]) as readonly string[],
    linearBps: DEFAULT_REWARD_PARAMS.hardware?.linearBps ?? 5_000,
  }),
})

/** The protocol timings and parameters a simulated network runs with (the production defaults where they exist). */
export interface SimProtocol {
  /** Unix seconds of epoch 0 and its length (production: one hour). */
  genesisTime: number
  epochDuration: number
  blockSeconds: number
  /** Uptime challenges a verifier sends a node per epoch, and their deadline (verifier config defaults). */
  challengesPerEpoch: number
  challengeTimeoutMs: number
  emission: EmissionSchedule
  params: RewardParams
  /** The fee Payments burns from every redeemed payment, basis points (the deploy's 500). */
  paymentFeeBps: number
}

/**
 * The default protocol: production's emission, epoch length, reward parameters (with the simulated
 * maker approved) and verifier defaults.
 */
export const DEFAULT_SIM_PROTOCOL: Readonly<SimProtocol> = Object.freeze({
  genesisTime: 1_700_000_000,
  epochDuration: 3_600,
  blockSeconds: 2,
  challengesPerEpoch: 4,
  challengeTimeoutMs: 2_000,
  emission: { initialEmission: 34_000n * MESH, halvingInterval: 8_760n },
  params: SIM_REWARD_PARAMS,
  paymentFeeBps: 500,
})

/** A simulated verifier: its keys and where it runs. */
export interface SimVerifier {
  index: number
  signer: PeerSigner
  /** Its EVM key (signs PostRoot) and address. */
  evmKey: `0x${string}`
  place: Place
  /** Signs wrong roots with the other colluders (a minority). */
  colluding: boolean
}

/** Everything both engines share: the fleet, the keys, the link model, the protocol. */
export interface World {
  seed: number
  epochs: number
  protocol: SimProtocol
  fleet: Fleet
  /** Peer id of each identity, by identity index. */
  peerIds: string[]
  /** The peer signer of identity `index` (its key, from the seed). */
  signerOf(index: number): PeerSigner
  /** Operator address of each identity (lower case), by identity index. */
  operators: `0x${string}`[]
  verifiers: SimVerifier[]
  quorum: number
  /** Link profile between any two peers of the world. */
  latency: LatencyModel
  /** Cohort of each operator address. */
  cohortOf: Map<string, string>
  /** The run's compute jobs (none unless a scenario draws them: `drawJobs`). */
  jobs: SimJob[]
  /** The run's weather stations (none unless a scenario draws them: `drawStations`). */
  stations: SimStation[]
  /** What a builder stores on the nodes (none: no storage service runs). */
  storage?: StorageDemand
}

const VERIFIER_ACCESS: Access = { accessMs: 1, jitterMs: 1, lossRate: 0.0005 }

/** Builds the world's identities and verifiers from the seed (deterministic keys: simulation only). */
export function buildWorld(init: {
  seed: number
  epochs: number
  fleet: Fleet
  verifiers: number
  colluders: number
  protocol?: SimProtocol
  /** No message is ever lost (to compare the engines outcome for outcome). */
  lossless?: boolean
}): World {
  const { seed, fleet } = init
  // Deriving 100,000 keys takes 11 s on one core: `ed25519PeerIds` uses them all.
  const peerIds = ed25519PeerIds(fleet.identities.map((id) => seedBytes(seed, 'node', id.index)))
  const operators: `0x${string}`[] = []
  const cohortOf = new Map<string, string>()
  for (const id of fleet.identities) {
    const operator = `0x${Buffer.from(seedBytes(seed, 'operator', id.index))
      .subarray(0, 20)
      .toString('hex')}` as const
    operators.push(operator)
    cohortOf.set(operator, id.cohort)
  }
  const places = stream(seed, 'verifier-places')
  const verifiers: SimVerifier[] = []
  for (let i = 0; i < init.verifiers; i++) {
    verifiers.push({
      index: i,
      signer: signerFromSeed(seedBytes(seed, 'verifier', i)),
      evmKey: `0x${createHash('sha256')
        .update(seedBytes(seed, 'verifier-evm', i))
        .digest('hex')}`,
      place: drawPlace(places),
      // The last ones collude, so that leaders rotate through honest and colluding verifiers alike.
      colluding: i >= init.verifiers - init.colluders,
    })
  }
  const endpoints = new Map<string, { place: Place; access: Access; forwardMs: number }>()
  for (const id of fleet.identities) {
    const machine = fleet.machines[id.machine]
    if (machine === undefined) throw new RangeError(`identity ${id.index} has no machine`)
    endpoints.set(peerIds[id.index] as string, {
      place: machine.place,
      access: machine.access,
      forwardMs: id.forwardMs,
    })
  }
  for (const v of verifiers)
    endpoints.set(v.signer.peerId, { place: v.place, access: VERIFIER_ACCESS, forwardMs: 0 })
  const latency: LatencyModel = (from, to) => {
    const a = endpoints.get(from)
    const b = endpoints.get(to)
    if (a === undefined || b === undefined) return { latencyMs: 50, jitterMs: 5 }
    const link = linkBetween(a, b, a.forwardMs + b.forwardMs)
    return init.lossless ? { ...link, lossRate: 0 } : link
  }
  return {
    seed,
    epochs: init.epochs,
    protocol: init.protocol ?? DEFAULT_SIM_PROTOCOL,
    fleet,
    peerIds,
    signerOf: (index) => signerFromSeed(seedBytes(seed, 'node', index)),
    operators,
    verifiers,
    quorum: Math.floor(init.verifiers / 2) + 1,
    latency,
    cohortOf,
    jobs: [],
    stations: [],
  }
}

/**
 * The libp2p peer id of the Ed25519 key with this 32-byte seed, derived with node:crypto (the
 * libp2p key classes derive the public key in JavaScript, 50 times slower: too slow for 100,000
 * identities; `ed25519PeerIds` derives many on every core). Tested equal to `createPeerSigner`'s.
 */
export function ed25519PeerId(seed: Uint8Array): string {
  return peerIdOfPublicKey(ed25519PublicKey(ed25519PrivateKey(seed)))
}

/** The peer signer of the Ed25519 key with this 32-byte seed (deterministic keys: simulation only). */
export function signerFromSeed(seed: Uint8Array): PeerSigner {
  const key = ed25519PrivateKey(seed)
  return {
    peerId: peerIdOfPublicKey(ed25519PublicKey(key)),
    sign: (data) => new Uint8Array(sign(null, data, key)),
  }
}

/** When an identity registers for a membership starting at `from` (ms): 30 s before that epoch (before its seed block). */
export function registrationMs(protocol: SimProtocol, from: number): number {
  return (protocol.genesisTime + from * protocol.epochDuration - 30) * 1000
}

/** The epoch a registration at `ms` counts from, as the epoch closer computes it for the bundle. */
export function registeredEpochOf(protocol: SimProtocol, ms: number): number {
  return Math.max(0, Math.floor((Math.floor(ms / 1000) - protocol.genesisTime) / protocol.epochDuration))
}

/**
 * When an identity can answer: its machine's online sessions within its memberships (in epochs from
 * genesis), sorted and disjoint.
 */
export function availability(world: World, identity: number): Span[] {
  const id = world.fleet.identities[identity]
  if (id === undefined) throw new RangeError(`no identity ${identity}`)
  const sessions = world.fleet.machines[id.machine]?.online ?? []
  const out: Span[] = []
  for (const m of id.memberships)
    for (const s of sessions) {
      const from = Math.max(m.from, s.from)
      const to = Math.min(m.to, s.to)
      if (from < to) out.push({ from, to })
    }
  return out
}

/** Whether identity sessions `spans` cover virtual time `ms`. */
export function onlineAt(world: World, spans: readonly Span[], ms: number): boolean {
  const { genesisTime, epochDuration } = world.protocol
  return isOnline(spans, (ms / 1000 - genesisTime) / epochDuration)
}
