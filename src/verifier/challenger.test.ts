import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { serveUptimeChallenges } from '../node/uptime.js'
import { Challenger, observationTopic } from './challenger.js'
import { UPTIME_OBSERVATION } from './observation.js'
import { openVerifierStore, type VerifierStore } from './store.js'

const NET = '31337:0xregistry'
const EPOCH_MS = 60_000
const SEED = `0x${'5e'.repeat(32)}`
const logger = createLogger({ level: 'silent' })
const cleanups: (() => void)[] = []
afterEach(() => {
  for (const f of cleanups.splice(0)) f()
})

async function world() {
  const clock = new VirtualClock(1_000_000)
  const net = new SimNetwork({ seed: 9, clock, latency: () => ({ latencyMs: 15, jitterMs: 5, lossRate: 0 }) })
  const signer = async () => createPeerSigner(await generateKeyPair('Ed25519'))
  const verifierKey = await signer()
  const nodes: PeerSigner[] = []
  for (let i = 0; i < 3; i++) nodes.push(await signer())
  const dir = mkdtempSync(join(tmpdir(), 'mw-challenger-'))
  const stores: VerifierStore[] = []
  cleanups.push(() => {
    for (const s of stores) s.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const openStore = () => {
    const s = openVerifierStore(join(dir, 'verifier.db'))
    stores.push(s)
    return s
  }
  const verifierPort = net.createPort(verifierKey.peerId)
  const nodePorts = new Map<string, NetworkPort>()
  const online = (s: PeerSigner) => {
    const port = net.createPort(s.peerId)
    serveUptimeChallenges(port, { network: NET, signer: s })
    nodePorts.set(s.peerId, port)
  }
  const offline = async (s: PeerSigner) => {
    await nodePorts.get(s.peerId)?.close()
    nodePorts.delete(s.peerId)
  }
  const challenger = (store: VerifierStore) =>
    new Challenger(
      { network: NET, challengesPerEpoch: 10, timeoutMs: 2_000 },
      {
        port: verifierPort,
        clock,
        store,
        verifier: createPeerVerifier(),
        logger,
        codec: createWireCodec({
          network: NET,
          signer: verifierKey,
          clock,
          types: [UPTIME_OBSERVATION],
          nextSeq: (type) => store.nextSeq(type),
        }),
      },
    )
  const plan = {
    epoch: 4,
    seed: SEED,
    startMs: 1_000_000,
    durationMs: EPOCH_MS,
    nodes: nodes.map((n) => n.peerId),
  }
  return { clock, net, verifierKey, nodes, openStore, online, offline, challenger, plan }
}

describe('Challenger (simulated network, virtual time)', () => {
  it('measures uptime over the epoch: always on, offline for the second half, never on', async () => {
    const w = await world()
    const [always, half, never] = w.nodes as [PeerSigner, PeerSigner, PeerSigner]
    w.online(always)
    w.online(half)
    // Someone listening to the observation topic, as other verifiers do.
    const listener = w.net.createPort('listener')
    const heard: unknown[] = []
    listener.subscribe(observationTopic(NET), (m) => {
      heard.push(JSON.parse(new TextDecoder().decode(m.data)))
      return 'accept'
    })
    const store = w.openStore()
    let done = false
    void w
      .challenger(store)
      .runEpoch(w.plan)
      .then(() => {
        done = true
      })
    // Half way through the challenge window (10% to 80% of the epoch), `half` goes away.
    await w.clock.advance(EPOCH_MS * 0.45)
    await w.offline(half)
    expect(await w.clock.runUntil(() => done, EPOCH_MS)).toBe(true)

    const counts = store.challengeCounts(4)
    expect(counts.get(always.peerId)).toEqual({ challenges: 10, answered: 10 })
    expect(counts.get(half.peerId)).toEqual({ challenges: 10, answered: 5 })
    expect(counts.get(never.peerId)).toEqual({ challenges: 10, answered: 0 })
    // One signed observation per node, stored and gossiped.
    const own = store.observations(4)
    expect(own.map((o) => [o.body.node, o.body.answered]).sort()).toEqual(
      [
        [always.peerId, 10],
        [half.peerId, 5],
        [never.peerId, 0],
      ].sort(),
    )
    await w.clock.runUntil(() => heard.length === 3, 5_000)
    expect(heard).toHaveLength(3)
    expect(own.every((o) => o.from === w.verifierKey.peerId)).toBe(true)
  })

  it('restarted in mid-epoch, does not repeat a challenge it stored, and publishes what it measured before', async () => {
    const w = await world()
    for (const n of w.nodes) w.online(n)
    const first = w.challenger(w.openStore())
    void first.runEpoch(w.plan)
    await w.clock.advance(EPOCH_MS * 0.4)
    first.stop() // the process dies here

    const store = w.openStore() // the same file, reopened
    const before = store.challengeCounts(4)
    const sentBefore = [...before.values()].reduce((n, c) => n + c.challenges, 0)
    expect(sentBefore).toBeGreaterThan(0)
    let done = false
    void w
      .challenger(store)
      .runEpoch(w.plan)
      .then(() => {
        done = true
      })
    expect(await w.clock.runUntil(() => done, EPOCH_MS)).toBe(true)
    for (const n of w.nodes)
      expect(store.challengeCounts(4).get(n.peerId)).toEqual({ challenges: 10, answered: 10 })
    expect(store.observations(4)).toHaveLength(3)
  })
})
