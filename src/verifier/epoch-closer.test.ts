import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { contractDomain, recoverSigner, signMessageOf } from '../chain/typed-data.js'
import { createLogger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec, type SignedEnvelope } from '../mesh/wire-codec.js'
import { DEFAULT_REWARD_PARAMS, type RewardParams } from '../rewards/index.js'
import { buildBundle, bundleCid, checkBundle, settleBundle } from './bundle.js'
import type { RegistrySnapshot, RootPoster, VerifierChain } from './chain-port.js'
import { EpochCloser, nodesDifference } from './epoch-closer.js'
import { EPOCH_ATTESTATION, EPOCH_PROPOSAL, leaderOf } from './leader.js'
import { UPTIME_OBSERVATION, type UptimeObservationBody } from './observation.js'
import { openVerifierStore, type VerifierStore } from './store.js'
import { BUNDLE_PROTOCOL } from './verifier-agent.js'

const NET = '31337:0xregistry'
const GENESIS = 1_800_000_000
const EPOCH_S = 60
const logger = createLogger({ level: 'silent' })
const cleanups: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

type Posted = Awaited<ReturnType<VerifierChain['postedRoots']>>

/**
 * The chain in memory: a block every 5 s of the virtual clock, a fixed registry, EpochRewards'
 * posting rule (the next epoch only, with `quorum` distinct registered signers of exactly the
 * message) and NetworkParams' history (`versions`, each with the epoch it applies from, oldest
 * first; the set of an epoch is the newest version applying by then). The EVM implementation is
 * tested on the embedded chain (test/integration).
 */
function ledger(
  clock: VirtualClock,
  registry: RegistrySnapshot,
  quorum: number,
  versions: { fromEpoch: number; params: RewardParams }[] = [{ fromEpoch: 0, params: DEFAULT_REWARD_PARAMS }],
) {
  const posted: Posted = new Map()
  const domain = contractDomain('EpochRewards', 31337, `0x${'e'.repeat(40)}`)
  const blockAt = (t: number) => BigInt(Math.floor((t - GENESIS) / 5))
  const chain: VerifierChain = {
    async head() {
      const n = blockAt(Math.floor(clock.now() / 1000))
      return { number: n, timestamp: GENESIS + Number(n) * 5 }
    },
    async firstBlockAtOrAfter(timestamp) {
      const head = await this.head()
      if (head.timestamp < timestamp) return undefined
      const n = BigInt(Math.ceil((timestamp - GENESIS) / 5))
      return { number: n, hash: `0x${n.toString(16).padStart(64, '0')}`, timestamp: GENESIS + Number(n) * 5 }
    },
    registry: async () => registry,
    paymentFees: async () => new Map(),
    postedRoots: async () => new Map(posted),
    paramsAt: async (epoch) =>
      (versions.findLast((v) => v.fromEpoch <= epoch) ?? (versions[0] as (typeof versions)[number])).params,
  }
  const poster = (key: `0x${string}`): RootPoster => {
    const account = privateKeyToAccount(key)
    return {
      address: account.address,
      state: async () => ({ quorum, revocations: 0, nextEpoch: posted.size }),
      sign: async (message) => (await signMessageOf(account, domain, 'PostRoot', message)).signature,
      recover: (message, signature) => recoverSigner(domain, 'PostRoot', message, signature),
      async post(message, signatures) {
        if (Number(message.epoch) !== posted.size) throw new Error('ROOT_WRONG_EPOCH')
        const signers = new Set<string>()
        for (const s of signatures) {
          const who = await recoverSigner(domain, 'PostRoot', { ...message, revocations: 0 }, s.signature)
          if (registry.verifiers.some((v) => v.address.toLowerCase() === who.toLowerCase()))
            signers.add(who.toLowerCase())
        }
        if (signers.size < quorum) throw new Error('ROOT_QUORUM')
        posted.set(Number(message.epoch), {
          root: message.root,
          digest: message.bundleDigest,
          totalCumulative: message.totalCumulative,
          block: (await chain.head()).number,
        })
      },
    }
  }
  return { chain, poster, posted }
}

function observation(v: PeerSigner, epoch: number, node: string): SignedEnvelope<UptimeObservationBody> {
  const codec = createWireCodec({
    network: NET,
    signer: v,
    clock: { now: () => GENESIS * 1000 + 30_000 },
    types: [UPTIME_OBSERVATION],
    nextSeq: () => 1,
  })
  const bytes = codec.encode(UPTIME_OBSERVATION, { epoch, node, challenges: 10, answered: 9 }).bytes
  return JSON.parse(new TextDecoder().decode(bytes))
}

/** Verifiers `peers` closing epochs on `net`, each holding `observations(i)`; stopped after the test. */
function startClosers(
  net: SimNetwork,
  clock: VirtualClock,
  peers: PeerSigner[],
  keys: `0x${string}`[],
  chains: VerifierChain[],
  poster: (key: `0x${string}`) => RootPoster,
  observations: (i: number) => SignedEnvelope<UptimeObservationBody>[],
): { closer: EpochCloser; store: VerifierStore }[] {
  const dir = mkdtempSync(join(tmpdir(), 'mw-epoch-closer-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const closers: { closer: EpochCloser; store: VerifierStore }[] = []
  for (const [i, peer] of peers.entries()) {
    const store = openVerifierStore(join(dir, `v${i}.db`))
    for (const o of observations(i)) store.saveObservation(o)
    const port = net.createPort(peer.peerId)
    port.handle(BUNDLE_PROTOCOL, async (cid) => {
      const held = store.bundle(new TextDecoder().decode(cid))
      if (held === undefined) throw new RangeError('no such bundle')
      return held.bytes
    })
    const closer = new EpochCloser(
      {
        network: NET,
        schedule: { genesisTime: GENESIS, epochDuration: EPOCH_S },
        emission: { initialEmission: 1_000n * 10n ** 18n, halvingInterval: 1_000n },
        graceMs: 500,
        leaderTimeoutMs: 5_000,
      },
      {
        port,
        clock,
        chain: chains[i] as VerifierChain,
        poster: poster(keys[i] as `0x${string}`),
        store,
        codec: createWireCodec({
          network: NET,
          signer: peer,
          clock,
          types: [EPOCH_PROPOSAL, EPOCH_ATTESTATION],
          nextSeq: (t) => store.nextSeq(t),
        }),
        verifier: createPeerVerifier(),
        logger,
        plan: () => undefined,
      },
    )
    closer.start()
    closers.push({ closer, store })
    cleanups.push(async () => {
      await closer.stop()
      store.close()
    })
  }
  return closers
}

/** `n` verifiers (peer keys and operator keys) and a registry of them with `nodes`. */
async function verifierSet(n: number, nodes: RegistrySnapshot['nodes']) {
  const peers: PeerSigner[] = []
  const keys: `0x${string}`[] = []
  for (let i = 0; i < n; i++) {
    peers.push(createPeerSigner(await generateKeyPair('Ed25519')))
    keys.push(generatePrivateKey())
  }
  const registry: RegistrySnapshot = {
    nodes,
    verifiers: peers.map((p, i) => ({
      peerId: p.peerId,
      address: privateKeyToAccount(keys[i] as `0x${string}`).address,
      stake: 1n,
    })),
  }
  /** The index of the verifier leading `epoch` at `attempt`. */
  const leader = (epoch: number, attempt: number) =>
    registry.verifiers.findIndex(
      (v) =>
        v.address.toLowerCase() ===
        leaderOf(
          registry.verifiers.map((x) => x.address),
          epoch,
          attempt,
        ),
    )
  return { peers, keys, registry, leader }
}

const NODE_STAKE = 1_000n * 10n ** 18n

describe('EpochCloser (simulated network, virtual time)', () => {
  const simNet = (clock: VirtualClock, seed: number) =>
    new SimNetwork({ seed, clock, latency: () => ({ latencyMs: 10, jitterMs: 5, lossRate: 0 }) })

  it('two verifiers whose first signatures went to different bundles still post the epoch', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    const node = 'node-a'
    const { peers, keys, registry, leader } = await verifierSet(2, [
      { peerId: node, operator: `0x${'1'.repeat(40)}`, stake: NODE_STAKE, registeredAt: GENESIS },
    ])
    const { chain, poster, posted } = ledger(clock, registry, 2)
    // The leader of epoch 0's first attempt never heard the other's observation; the other holds both.
    const firstLeader = leader(0, 0)
    const closers = startClosers(simNet(clock, 9), clock, peers, keys, [chain, chain], poster, (i) =>
      i === firstLeader
        ? [observation(peers[i] as PeerSigner, 0, node)]
        : peers.map((p) => observation(p, 0, node)),
    )

    // Attempt 0: the first leader's bundle lacks the other's observation, which refuses it.
    expect(await clock.runUntil(() => (closers[1 - firstLeader]?.closer.refused.size ?? 0) > 0, 70_000)).toBe(
      true,
    )
    expect(closers[1 - firstLeader]?.closer.refused.get('own_observations_missing')).toBe(1)
    expect(posted.size).toBe(0)
    // Attempt 1: the other leads with both observations; the first leader signs that bundle too.
    expect(await clock.runUntil(() => posted.size === 1, 30_000)).toBe(true)
    await clock.advance(1_000)
    // The posted root is the second leader's bundle, held and signed by both, and it pays the node.
    const cid = bundleCid(posted.get(0)?.digest as `0x${string}`)
    for (const { store } of closers) {
      expect(store.bundle(cid)?.root).toBe(posted.get(0)?.root)
      expect(store.attestations(0, cid)).toHaveLength(2)
    }
  })

  it('builds each epoch’s bundle with the set the chain holds for that epoch, and records its version', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    // Two nodes, one with three times the stake of the other; from epoch 1 on, version 2 caps
    // stake at the smaller one's, so both weigh the same.
    const nodes: RegistrySnapshot['nodes'] = [
      { peerId: 'node-a', operator: `0x${'1'.repeat(40)}`, stake: NODE_STAKE, registeredAt: GENESIS },
      { peerId: 'node-b', operator: `0x${'2'.repeat(40)}`, stake: 3n * NODE_STAKE, registeredAt: GENESIS },
    ]
    // Sets made before certified hardware: the stake cap binds every node.
    const { hardware: _hardware, ...uncertified } = DEFAULT_REWARD_PARAMS
    const capped: RewardParams = {
      ...uncertified,
      version: 2,
      uptime: { ...uncertified.uptime, stakeCap: NODE_STAKE },
    }
    const { peers, keys, registry } = await verifierSet(2, nodes)
    const { chain, poster, posted } = ledger(clock, registry, 2, [
      { fromEpoch: 0, params: uncertified },
      { fromEpoch: 1, params: capped },
    ])
    const closers = startClosers(simNet(clock, 11), clock, peers, keys, [chain, chain], poster, () =>
      [0, 1].flatMap((epoch) => peers.flatMap((p) => nodes.map((n) => observation(p, epoch, n.peerId)))),
    )
    expect(await clock.runUntil(() => posted.size === 2, 150_000)).toBe(true)
    const settled = [0, 1].map((epoch) => {
      const held = closers[0]?.store.bundle(bundleCid(posted.get(epoch)?.digest as string))
      const checked = checkBundle(held?.bytes as Uint8Array, {
        network: NET,
        verifier: createPeerVerifier(),
        previousRoot: posted.get(epoch - 1)?.root ?? null,
      })
      if (!checked.ok) throw new Error(checked.fault)
      return { version: checked.bundle.bundle.params.version, rewards: settleBundle(checked.bundle).rewards }
    })
    expect(settled.map((e) => e.version)).toEqual([1, 2])
    const paid = (epoch: number, operator: string) => settled[epoch]?.rewards.payouts.get(operator) ?? 0n
    // Epoch 0 (version 1): stake counts up to 10,000 MESH, so node-b earns three times node-a.
    expect(paid(0, `0x${'2'.repeat(40)}`)).toBe(3n * paid(0, `0x${'1'.repeat(40)}`))
    // Epoch 1 (version 2): stake counts up to 1,000 MESH, so they earn the same.
    expect(paid(1, `0x${'2'.repeat(40)}`)).toBe(paid(1, `0x${'1'.repeat(40)}`))
    for (const { closer } of closers) expect(closer.refused.size).toBe(0)
  })

  it('refuses a leader’s bundle whose parameters are not the chain’s (params_mismatch); the next leader’s root is posted', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    const node = 'node-a'
    const { peers, keys, registry, leader } = await verifierSet(3, [
      { peerId: node, operator: `0x${'1'.repeat(40)}`, stake: NODE_STAKE, registeredAt: GENESIS },
    ])
    const { chain, poster, posted } = ledger(clock, registry, 2)
    // The first leader of epoch 0 picks its own parameters: a lower threshold, the same version.
    const rogue = leader(0, 0)
    const own: RewardParams = {
      ...DEFAULT_REWARD_PARAMS,
      uptime: { ...DEFAULT_REWARD_PARAMS.uptime, thresholdPpm: 0 },
    }
    const chains = peers.map((_, i) => (i === rogue ? { ...chain, paramsAt: async () => own } : chain))
    const closers = startClosers(simNet(clock, 13), clock, peers, keys, chains, poster, () =>
      peers.map((p) => observation(p, 0, node)),
    )
    const honest = closers.filter((_, i) => i !== rogue)
    expect(
      await clock.runUntil(() => honest.every((c) => c.closer.refused.get('params_mismatch') === 1), 70_000),
    ).toBe(true)
    expect(posted.size).toBe(0)
    // The next attempt's leader builds with the chain's set; the other honest verifier signs it.
    expect(await clock.runUntil(() => posted.size === 1, 30_000)).toBe(true)
    const held = honest[0]?.store.bundle(bundleCid(posted.get(0)?.digest as string))
    expect(JSON.parse(new TextDecoder().decode(held?.bytes)).params.uptime.thresholdPpm).toBe(
      DEFAULT_REWARD_PARAMS.uptime.thresholdPpm,
    )
  })
})

describe('nodesDifference (an attester checks the leader listed the registry as the chain has it)', () => {
  const registry = [
    {
      peerId: 'node-b',
      operator: '0xBB00000000000000000000000000000000000000',
      stake: 5n,
      registeredEpoch: 2,
      cell: '871f1d489ffffff',
    },
    {
      peerId: 'node-a',
      operator: '0xaa00000000000000000000000000000000000000',
      stake: 7n,
      registeredEpoch: 0,
      cell: '871fb4662ffffff',
    },
  ]
  const listed = (nodes: typeof registry) =>
    buildBundle({
      net: 'test',
      epoch: 3,
      seed: `0x${'11'.repeat(32)}`,
      emission: 1n,
      params: DEFAULT_REWARD_PARAMS,
      nodes,
      verifiers: [],
      observations: [],
      carried: { root: null, entries: [] },
    }).bundle.nodes

  it('finds none in the leader’s honest list (sorted and lower-cased as bundles are)', () => {
    expect(nodesDifference(listed(registry), registry)).toBeUndefined()
  })

  it('names a node left out, a stake raised and a cell moved', () => {
    expect(nodesDifference(listed(registry.slice(1)), registry)).toBe("1 nodes, the registry's 2")
    const raised = registry.map((n) => (n.peerId === 'node-a' ? { ...n, stake: 70n } : n))
    expect(nodesDifference(listed(raised), registry)).toBe("node-a: stake 70, the registry's 7")
    const moved = registry.map((n) => (n.peerId === 'node-b' ? { ...n, cell: '871fb4662ffffff' } : n))
    expect(nodesDifference(listed(moved), registry)).toMatch(/^node-b: cell 871fb4662ffffff/)
  })
})
