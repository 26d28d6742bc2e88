import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec, SEQ_WINDOW } from '../mesh/wire-codec.js'
import { AdTable } from './ad-table.js'
import { ADVERTISEMENT, adTopic } from './advertisement.js'
import { syncAds } from './advertiser.js'
import { openNodeDatabase } from './database.js'
import { NodeAgent } from './node-agent.js'

const NET = '31337:0xregistry'
const CELL = '871f1d489ffffff'
const OPERATOR = '0x000000000000000000000000000000000000dEaD'
const logger = createLogger({ level: 'silent' })
const resources = { cores: 2, memoryMb: 4_096, diskFreeMb: 10_000, gpus: [] }

interface TestNode {
  agent: NodeAgent
  key: Ed25519PrivateKey
  peerId: string
  dbPath: string
  port: NetworkPort
}

async function network(n: number, seed = 1) {
  const clock = new VirtualClock()
  const net = new SimNetwork({ seed, clock })
  const nodes: TestNode[] = []
  const start = async (key?: Ed25519PrivateKey, dbPath?: string) => {
    const k = key ?? (await generateKeyPair('Ed25519'))
    const peerId = peerIdFromPrivateKey(k).toString()
    const path = dbPath ?? join(mkdtempSync(join(tmpdir(), 'mw-agent-')), 'node.db')
    const port = net.createPort(peerId)
    const agent = new NodeAgent(
      {
        network: NET,
        h3Cell: CELL,
        tier: 'edge',
        version: 'test',
        refreshMs: 10_000,
        ttlMs: 30_000,
        dir: tmpdir(),
      },
      {
        port,
        clock,
        db: openNodeDatabase(path),
        identity: { peerKey: k, peerId, operatorAddress: OPERATOR },
        resources,
        logger,
      },
    )
    const node = { agent, key: k, peerId, dbPath: path, port }
    nodes.push(node)
    return node
  }
  for (let i = 0; i < n; i++) await start()
  return { clock, net, nodes, start }
}

const metric = async (agent: NodeAgent, name: string) =>
  (await agent.metrics.registry.getSingleMetricAsString(name)) ?? ''

describe('node agent on the simulated network', () => {
  const stops: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const s of stops.splice(0)) await s()
  })

  it('answers a newcomer with every advertisement it holds, each checked by the newcomer', async () => {
    const { clock, net, nodes } = await network(3)
    await Promise.all(nodes.map((n) => n.agent.start()))
    stops.push(...nodes.map((n) => () => n.agent.stop()))
    await clock.advance(5_000)
    const signer = createPeerSigner(await generateKeyPair('Ed25519'))
    const newcomer = net.createPort(signer.peerId)
    const codec = createWireCodec({ network: NET, signer, clock, types: [ADVERTISEMENT], nextSeq: () => 1 })
    const table = new AdTable({ clock })
    const syncing = syncAds(newcomer, nodes[0]?.peerId as string, { codec, table })
    await clock.advance(100)
    // The node's own ad and the two it heard, at once (no waiting for a refresh period).
    expect(await syncing).toBe(3)
    expect(
      table
        .list()
        .map((a) => a.peerId)
        .sort(),
    ).toEqual(nodes.map((n) => n.peerId).sort())
    // Asked again, nothing is new (every one is a replay of what it holds).
    const again = syncAds(newcomer, nodes[1]?.peerId as string, { codec, table })
    await clock.advance(100)
    expect(await again).toBe(0)
  })

  it('5 nodes started together each see the other 4 advertisements within 10 s of network time', async () => {
    const { clock, nodes } = await network(5)
    await Promise.all(nodes.map((n) => n.agent.start()))
    stops.push(...nodes.map((n) => () => n.agent.stop()))
    const t0 = clock.now()
    expect(await clock.runUntil(() => nodes.every((n) => n.agent.table.size === 4), 10_000)).toBe(true)
    // The warm-up repeat at 1 s reaches the nodes that subscribed after a node's first ad.
    expect(clock.now() - t0).toBeLessThanOrEqual(1_100)
    const seen = nodes[0]?.agent.table.get(nodes[1]?.peerId as string)
    expect(seen?.ad).toMatchObject({ operator: OPERATOR, h3Cell: CELL, tier: 'edge', resources })
  })

  it('refreshes on its period, and ads of a node that went quiet expire from the table', async () => {
    const { clock, nodes } = await network(2)
    const [a, b] = nodes as [TestNode, TestNode]
    await a.agent.start()
    await b.agent.start()
    stops.push(() => b.agent.stop())
    await clock.runUntil(() => b.agent.table.size === 1, 2_000)
    // Warm-up repeats at 1, 3 and 7 s, then one every refresh period (10 s).
    await clock.advance(7_100)
    const afterWarmup = b.agent.table.get(a.peerId)?.seq as number
    await clock.advance(10_000)
    expect(b.agent.table.get(a.peerId)?.seq).toBe(afterWarmup + 1)
    await a.agent.stop()
    await clock.advance(31_000)
    expect(b.agent.table.get(a.peerId)).toBeUndefined()
  })

  it('rejects forged, replayed, expired and oversized advertisements and counts them by reason', async () => {
    const { clock, net, nodes } = await network(1)
    const [victim] = nodes as [TestNode]
    await victim.agent.start()
    stops.push(() => victim.agent.stop())
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const port = net.createPort(peerId)
    let seq = 2_000
    let offset = 0
    const codec = createWireCodec({
      network: NET,
      signer: createPeerSigner(key),
      clock: { now: () => clock.now() + offset },
      types: [ADVERTISEMENT],
      nextSeq: () => seq,
    })
    const ad = victim.agent.advertisement()
    const send = async (bytes: Uint8Array) => {
      await port.publish(adTopic(NET), bytes)
      await clock.advance(50)
    }
    await send(codec.encode(ADVERTISEMENT, ad, { ttlMs: 60_000 }).bytes)
    expect(victim.agent.table.get(peerId)?.seq).toBe(2_000)

    // Forged: a body changed after signing.
    seq = 2_001
    const honest = JSON.parse(new TextDecoder().decode(codec.encode(ADVERTISEMENT, ad).bytes))
    await send(
      new TextEncoder().encode(JSON.stringify({ ...honest, body: { ...honest.body, tier: 'cloud' } })),
    )
    // Replayed: further below the sequence number held than the codec's window reaches.
    seq = 2_000 - SEQ_WINDOW
    await send(codec.encode(ADVERTISEMENT, ad).bytes)
    // Expired: signed long ago.
    seq = 2_002
    offset = -120_000
    await send(codec.encode(ADVERTISEMENT, ad, { ttlMs: 60_000 }).bytes)
    offset = 0
    // Oversized.
    await send(new Uint8Array(9_000))

    expect(victim.agent.table.get(peerId)?.seq).toBe(2_000)
    const rejected = await metric(victim.agent, 'meshwork_node_messages_rejected_total')
    for (const reason of ['bad_signature', 'replay', 'expired', 'too_large']) {
      expect(rejected).toMatch(new RegExp(`reason="${reason}"} 1`))
    }
    // Each drop was a `reject` verdict against the sender (its gossip score pays).
    expect(net.stats().rejected[peerId]).toBe(4)
  })

  it('keeps its peer id and continues its ad sequence across a restart', async () => {
    const { clock, nodes, start } = await network(2)
    const [a, b] = nodes as [TestNode, TestNode]
    await a.agent.start()
    await b.agent.start()
    stops.push(() => b.agent.stop())
    await clock.runUntil(() => b.agent.table.size === 1, 2_000)
    const before = b.agent.table.get(a.peerId)?.seq as number
    await a.agent.stop()
    await a.port.close()
    // The same key and database, as after a process restart.
    const again = await start(a.key, a.dbPath)
    await again.agent.start()
    stops.push(() => again.agent.stop())
    await clock.runUntil(() => (b.agent.table.get(a.peerId)?.seq ?? 0) > before, 2_000)
    expect(again.peerId).toBe(a.peerId)
    expect(b.agent.table.get(a.peerId)?.seq).toBeGreaterThan(before)
  })
})
