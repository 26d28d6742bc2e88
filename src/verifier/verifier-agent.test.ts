import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { serveUptimeChallenges } from '../node/uptime.js'
import type { RegistrySnapshot, VerifierChain } from './chain-port.js'
import { observationTopic } from './challenger.js'
import { UPTIME_OBSERVATION } from './observation.js'
import { openVerifierStore, type VerifierStore } from './store.js'
import { VerifierAgent } from './verifier-agent.js'

const NET = '31337:0xregistry'
const GENESIS = 1_800_000_000
const EPOCH_S = 60
const logger = createLogger({ level: 'silent' })
const cleanups: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/**
 * The chain as the verifiers see it, in memory (the EVM implementation is tested on the embedded
 * chain in test/integration/verifier-chain.test.ts): one block every 5 s of the virtual clock.
 */
function ledger(
  clock: VirtualClock,
  registry: RegistrySnapshot,
): Pick<VerifierChain, 'head' | 'firstBlockAtOrAfter' | 'registry'> {
  const blockAt = (t: number) => BigInt(Math.floor((t - GENESIS) / 5))
  return {
    async head() {
      const now = Math.floor(clock.now() / 1000)
      return { number: blockAt(now), timestamp: GENESIS + Number(blockAt(now)) * 5 }
    },
    async firstBlockAtOrAfter(timestamp) {
      const head = await this.head()
      if (head.timestamp < timestamp) return undefined
      const n = BigInt(Math.ceil((timestamp - GENESIS) / 5))
      return { number: n, hash: `0x${n.toString(16).padStart(64, '0')}`, timestamp: GENESIS + Number(n) * 5 }
    },
    registry: async () => registry,
  }
}

describe('VerifierAgent (simulated network, virtual time)', () => {
  it('two verifiers challenge both nodes each epoch and end up holding each other’s observations', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    const net = new SimNetwork({
      seed: 5,
      clock,
      latency: () => ({ latencyMs: 10, jitterMs: 5, lossRate: 0 }),
    })
    const keys: PeerSigner[] = []
    for (let i = 0; i < 5; i++) keys.push(createPeerSigner(await generateKeyPair('Ed25519')))
    const [v1, v2, n1, n2, outsider] = keys as [PeerSigner, PeerSigner, PeerSigner, PeerSigner, PeerSigner]
    for (const n of [n1, n2]) serveUptimeChallenges(net.createPort(n.peerId), { network: NET, signer: n })
    const registry: RegistrySnapshot = {
      nodes: [n1, n2].map((n, i) => ({
        peerId: n.peerId,
        operator: `0x${String(i + 1).padStart(40, '0')}`,
        stake: 1n,
        registeredAt: GENESIS,
      })),
      verifiers: [v1, v2].map((v, i) => ({
        peerId: v.peerId,
        address: `0x${String(i + 7).padStart(40, '0')}`,
        stake: 1n,
      })),
    }
    const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-agent-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const agents: { agent: VerifierAgent; store: VerifierStore }[] = []
    for (const [i, v] of [v1, v2].entries()) {
      const store = openVerifierStore(join(dir, `v${i}.db`))
      const agent = new VerifierAgent(
        {
          network: NET,
          schedule: { genesisTime: GENESIS, epochDuration: EPOCH_S },
          challengesPerEpoch: 6,
          challengeTimeoutMs: 2_000,
        },
        {
          port: net.createPort(v.peerId),
          clock,
          chain: ledger(clock, registry),
          store,
          codec: createWireCodec({
            network: NET,
            signer: v,
            clock,
            types: [UPTIME_OBSERVATION],
            nextSeq: (t) => store.nextSeq(t),
          }),
          verifier: createPeerVerifier(),
          logger,
        },
      )
      agent.start()
      agents.push({ agent, store })
      cleanups.push(async () => {
        await agent.stop()
        store.close()
      })
    }
    // An outsider with a valid key but no verifier registration publishes a flattering observation.
    const outsiderPort = net.createPort(outsider.peerId)
    const outsiderCodec = createWireCodec({
      network: NET,
      signer: outsider,
      clock,
      types: [UPTIME_OBSERVATION],
      nextSeq: () => 1,
    })

    // Two epochs pass.
    await clock.advance(EPOCH_S * 1000 * 0.5)
    await outsiderPort.publish(
      observationTopic(NET),
      outsiderCodec.encode(UPTIME_OBSERVATION, { epoch: 0, node: n2.peerId, challenges: 6, answered: 6 })
        .bytes,
    )
    await clock.advance(EPOCH_S * 1000 * 1.6)

    for (const { agent, store } of agents) {
      expect(agent.planned(0)?.registry).toBe(registry)
      for (const epoch of [0, 1]) {
        const held = store.observations(epoch).map((o) => [o.from, o.body.node, o.body.answered])
        expect(held.sort()).toEqual(
          [
            [v1.peerId, n1.peerId, 6],
            [v1.peerId, n2.peerId, 6],
            [v2.peerId, n1.peerId, 6],
            [v2.peerId, n2.peerId, 6],
          ].sort(),
        )
      }
      expect(agent.counts.refused).toBe(1)
    }
  })
})

describe('VerifierAgent when the chain fails', () => {
  it('keeps planning epochs after failed chain reads (an RPC hiccup never stops it)', async () => {
    const clock = new VirtualClock(GENESIS * 1000 + 1)
    const net = new SimNetwork({
      seed: 9,
      clock,
      latency: () => ({ latencyMs: 5, jitterMs: 1, lossRate: 0 }),
    })
    const v = createPeerSigner(await generateKeyPair('Ed25519'))
    const node = createPeerSigner(await generateKeyPair('Ed25519'))
    serveUptimeChallenges(net.createPort(node.peerId), { network: NET, signer: node })
    const registry: RegistrySnapshot = {
      nodes: [
        { peerId: node.peerId, operator: `0x${'1'.padStart(40, '0')}`, stake: 1n, registeredAt: GENESIS },
      ],
      verifiers: [{ peerId: v.peerId, address: `0x${'7'.padStart(40, '0')}`, stake: 1n }],
    }
    // The first four reads of the registry fail, as an unreachable RPC would make them.
    const chain = ledger(clock, registry)
    let failures = 4
    const flaky: Pick<VerifierChain, 'head' | 'firstBlockAtOrAfter' | 'registry'> = {
      ...chain,
      head: () => chain.head(),
      firstBlockAtOrAfter: (t) => chain.firstBlockAtOrAfter(t),
      registry: async (block) => {
        if (failures-- > 0) throw new Error('fetch failed')
        return chain.registry(block)
      },
    }
    const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-agent-'))
    const store = openVerifierStore(join(dir, 'v.db'))
    const agent = new VerifierAgent(
      {
        network: NET,
        schedule: { genesisTime: GENESIS, epochDuration: EPOCH_S },
        challengesPerEpoch: 4,
        challengeTimeoutMs: 2_000,
        pollMs: 1_000,
      },
      {
        port: net.createPort(v.peerId),
        clock,
        chain: flaky,
        store,
        codec: createWireCodec({
          network: NET,
          signer: v,
          clock,
          types: [UPTIME_OBSERVATION],
          nextSeq: (t) => store.nextSeq(t),
        }),
        verifier: createPeerVerifier(),
        logger,
      },
    )
    agent.start()
    cleanups.push(async () => {
      await agent.stop()
      store.close()
      rmSync(dir, { recursive: true, force: true })
    })
    await clock.advance(EPOCH_S * 1000 * 2.9)
    expect(failures).toBeLessThan(0)
    // Epoch 0 was planned late (after the retries) and still measured; epoch 1 in full.
    expect(agent.planned(0)).toBeDefined()
    const epoch1 = store.observations(1).map((o) => [o.from, o.body.node, o.body.challenges, o.body.answered])
    expect(epoch1).toEqual([[v.peerId, node.peerId, 4, 4]])
    expect(store.observations(0)).toHaveLength(1)
  })
})
