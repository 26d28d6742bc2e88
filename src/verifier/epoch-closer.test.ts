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
import { DEFAULT_REWARD_PARAMS } from '../rewards/index.js'
import { bundleCid } from './bundle.js'
import type { RegistrySnapshot, RootPoster, VerifierChain } from './chain-port.js'
import { EpochCloser } from './epoch-closer.js'
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
 * The chain in memory: a block every 5 s of the virtual clock, a fixed registry, and EpochRewards'
 * posting rule (the next epoch only, with `quorum` distinct registered signers of exactly the
 * message). The EVM implementation is tested on the embedded chain (test/integration).
 */
function ledger(clock: VirtualClock, registry: RegistrySnapshot, quorum: number) {
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
    postedRoots: async () => new Map(posted),
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

describe('EpochCloser (simulated network, virtual time)', () => {
  it('two verifiers whose first signatures went to different bundles still post the epoch', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    const net = new SimNetwork({
      seed: 9,
      clock,
      latency: () => ({ latencyMs: 10, jitterMs: 5, lossRate: 0 }),
    })
    const peers = [
      createPeerSigner(await generateKeyPair('Ed25519')),
      createPeerSigner(await generateKeyPair('Ed25519')),
    ]
    const keys = [generatePrivateKey(), generatePrivateKey()]
    const node = 'node-a'
    const registry: RegistrySnapshot = {
      nodes: [
        { peerId: node, operator: `0x${'1'.repeat(40)}`, stake: 1_000n * 10n ** 18n, registeredAt: GENESIS },
      ],
      verifiers: peers.map((p, i) => ({
        peerId: p.peerId,
        address: privateKeyToAccount(keys[i] as `0x${string}`).address,
        stake: 1n,
      })),
    }
    const { chain, poster, posted } = ledger(clock, registry, 2)
    // The leader of epoch 0's first attempt never heard the other's observation; the other holds both.
    const firstLeader = registry.verifiers.findIndex(
      (v) =>
        v.address.toLowerCase() ===
        leaderOf(
          registry.verifiers.map((x) => x.address),
          0,
          0,
        ),
    )
    const dir = mkdtempSync(join(tmpdir(), 'mw-epoch-closer-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const closers: { closer: EpochCloser; store: VerifierStore }[] = []
    for (const [i, peer] of peers.entries()) {
      const store = openVerifierStore(join(dir, `v${i}.db`))
      store.saveObservation(observation(peer, 0, node))
      if (i !== firstLeader) store.saveObservation(observation(peers[firstLeader] as PeerSigner, 0, node))
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
          params: DEFAULT_REWARD_PARAMS,
          graceMs: 500,
          leaderTimeoutMs: 5_000,
        },
        {
          port,
          clock,
          chain,
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
})
