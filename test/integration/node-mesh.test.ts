import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import { createLibp2pPort } from '../../src/mesh/libp2p-port.js'
import type { NetworkPort } from '../../src/mesh/network-port.js'
import { createPeerSigner } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { ADVERTISEMENT, type Advertisement, adTopic } from '../../src/node/advertisement.js'
import { type NodeDatabase, openNodeDatabase } from '../../src/node/database.js'
import { NodeAgent } from '../../src/node/node-agent.js'

/**
 * The scenarios of src/node/node-agent.test.ts, on real libp2p nodes on 127.0.0.1 with the
 * production wiring of `meshwork node start`: one libp2p node and one SQLite database per agent,
 * the advertisement topic scored by gossipsub, the wall clock.
 */

const NET = '31337:0xregistry'
const TOPIC = adTopic(NET)
const CELL = '871f1d489ffffff'
const OPERATOR = '0x000000000000000000000000000000000000dEaD'
const REFRESH_MS = 10_000
const TTL_MS = 60_000
/** Gossipsub's default graylist threshold: below it, a peer's RPCs are ignored. */
const GRAYLIST_THRESHOLD = -80
const logger = createLogger({ level: 'silent' })
const resources = { cores: 2, memoryMb: 4_096, diskFreeMb: 10_000, gpus: [] }

/** Polls `condition` every 20 ms until it holds; rejects after `timeoutMs` of real time. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The node's TCP address (with /p2p/), to bootstrap from. */
function tcpAddr(node: MeshLibp2p): string {
  const addr = node.getMultiaddrs().find((a) => !a.toString().includes('/ws'))
  if (addr === undefined) throw new Error('node has no TCP address')
  return addr.toString()
}

interface LiveNode {
  key: Ed25519PrivateKey
  peerId: string
  dbPath: string
  libp2p: MeshLibp2p
  port: NetworkPort
  agent: NodeAgent
  stop(): Promise<void>
}

/** Everything a test started, stopped in afterEach even when the test fails midway. */
const running = new Set<{ stop(): Promise<void> }>()
const tempDirs: string[] = []

function tempDbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mw-node-mesh-'))
  tempDirs.push(dir)
  return join(dir, 'node.db')
}

/** Starts a libp2p node and its network port as `meshwork node start` does. */
async function startLibp2p(key: Ed25519PrivateKey, bootstrap: string[]) {
  const libp2p = await createMeshLibp2p({ privateKey: key, bootstrap, scoredTopics: [TOPIC] })
  return { libp2p, port: createLibp2pPort(libp2p) }
}

/** Starts an agent on its own libp2p node and database; the same key and path continue a node. */
async function startAgent(
  options: { key?: Ed25519PrivateKey; dbPath?: string; bootstrap?: string[] } = {},
): Promise<LiveNode> {
  const key = options.key ?? (await generateKeyPair('Ed25519'))
  const dbPath = options.dbPath ?? tempDbPath()
  const db: NodeDatabase = openNodeDatabase(dbPath)
  const { libp2p, port } = await startLibp2p(key, options.bootstrap ?? [])
  const peerId = libp2p.peerId.toString()
  const agent = new NodeAgent(
    {
      network: NET,
      h3Cell: CELL,
      tier: 'edge',
      version: 'test',
      refreshMs: REFRESH_MS,
      ttlMs: TTL_MS,
      dir: tmpdir(),
    },
    {
      port,
      clock: systemClock,
      db,
      identity: { peerKey: key, peerId, operatorAddress: OPERATOR },
      resources,
      logger,
      addresses: () => libp2p.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
    },
  )
  let stopped: Promise<void> | undefined
  const node: LiveNode = {
    key,
    peerId,
    dbPath,
    libp2p,
    port,
    agent,
    // In reverse order of the composition root: agent, mesh, database.
    stop: () => {
      stopped ??= (async () => {
        await agent.stop()
        await port.close()
        db.close()
        running.delete(node)
      })()
      return stopped
    },
  }
  running.add(node)
  await agent.start()
  return node
}

const rejectedCount = async (agent: NodeAgent, reason: string): Promise<number> => {
  const metric = await agent.metrics.registry.getSingleMetric('meshwork_node_messages_rejected_total')?.get()
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0
}

afterEach(async () => {
  await Promise.all([...running].map((n) => n.stop()))
})

afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('node agents on real libp2p (127.0.0.1)', () => {
  it('5 nodes started from one bootstrap node each see the other 4 advertisements within 10 s', async ({
    annotate,
  }) => {
    const t0 = Date.now()
    const first = await startAgent()
    const rest = await Promise.all([1, 2, 3, 4].map(() => startAgent({ bootstrap: [tcpAddr(first.libp2p)] })))
    const nodes = [first, ...rest]
    await until(() => nodes.every((n) => n.agent.table.size === 4), 10_000)
    const elapsed = Date.now() - t0
    expect(elapsed).toBeLessThanOrEqual(10_000)
    await annotate(`all 5 tables full ${elapsed} ms after the first node started`)

    for (const n of nodes) {
      const others = nodes.filter((o) => o !== n).map((o) => o.peerId)
      expect(
        n.agent.table
          .list()
          .map((a) => a.peerId)
          .sort(),
      ).toEqual(others.sort())
    }
    const seen = first.agent.table.get(rest[0]?.peerId as string)
    expect(seen?.ad).toMatchObject({ operator: OPERATOR, h3Cell: CELL, tier: 'edge', resources })
    // Each advertisement carries where to dial its node, and it is a real listening address.
    expect(seen?.ad.addrs).toContain(tcpAddr(rest[0]?.libp2p as MeshLibp2p).replace(/\/p2p\/[^/]+$/, ''))
  })

  it('rejects forged, replayed, expired and oversized advertisements from a peer in the mesh, and keeps its valid one', async () => {
    const first = await startAgent()
    const rest = await Promise.all([1, 2, 3, 4].map(() => startAgent({ bootstrap: [tcpAddr(first.libp2p)] })))
    const victims = [first, ...rest]

    // The attacker: a libp2p node of its own, connected to every victim, with its own wire codec.
    const key = await generateKeyPair('Ed25519')
    const attacker = await startLibp2p(
      key,
      victims.map((v) => tcpAddr(v.libp2p)),
    )
    running.add({ stop: () => attacker.port.close() })
    const attackerId = attacker.libp2p.peerId.toString()
    await until(() => victims.every((v) => attacker.port.topicPeers(TOPIC).includes(v.peerId)))

    let seq = 10
    let offset = 0
    const codec = createWireCodec({
      network: NET,
      signer: createPeerSigner(key),
      clock: { now: () => Date.now() + offset },
      types: [ADVERTISEMENT],
      nextSeq: () => seq,
    })
    const ad: Advertisement = { ...first.agent.advertisement(), addrs: [] }
    const publish = (bytes: Uint8Array) => attacker.port.publish(TOPIC, bytes)

    // A valid advertisement first: every victim takes it, so that a lower sequence is a replay.
    await publish(codec.encode(ADVERTISEMENT, ad, { ttlMs: TTL_MS }).bytes)
    await until(() => victims.every((v) => v.agent.table.get(attackerId)?.seq === 10))

    // Forged: the body changed after signing.
    seq = 11
    const honest = JSON.parse(new TextDecoder().decode(codec.encode(ADVERTISEMENT, ad).bytes))
    await publish(
      new TextEncoder().encode(JSON.stringify({ ...honest, body: { ...honest.body, tier: 'cloud' } })),
    )
    // Replayed: an older sequence number than the one the victims hold.
    seq = 5
    await publish(codec.encode(ADVERTISEMENT, ad).bytes)
    // Expired: signed two minutes ago with a one-minute validity.
    seq = 12
    offset = -120_000
    await publish(codec.encode(ADVERTISEMENT, ad, { ttlMs: TTL_MS }).bytes)
    offset = 0
    // Oversized: above the advertisement's 8 KiB cap.
    await publish(new Uint8Array(9_000))

    const reasons = ['bad_signature', 'replay', 'expired', 'too_large']
    await until(async () => {
      for (const v of victims) {
        for (const reason of reasons) if ((await rejectedCount(v.agent, reason)) < 1) return false
      }
      return true
    })
    for (const v of victims) {
      for (const reason of reasons) expect(await rejectedCount(v.agent, reason)).toBe(1)
      // The valid advertisement stays, with its sequence number and the body that was signed.
      const held = v.agent.table.get(attackerId)
      expect(held?.seq).toBe(10)
      expect(held?.ad).toEqual(ad)
      expect(held?.ad.tier).toBe('edge')
      // A rejected message is not relayed, and each costs its sender: four rejections take the
      // attacker below gossipsub's graylist threshold, where its RPCs are ignored.
      await until(() => v.libp2p.services.pubsub.getScore(attackerId) < GRAYLIST_THRESHOLD)
    }
  })

  it('keeps its peer id and continues its advertisement sequence across a restart', async () => {
    const b = await startAgent()
    const a = await startAgent({ bootstrap: [tcpAddr(b.libp2p)] })
    await until(() => b.agent.table.get(a.peerId) !== undefined)
    const before = b.agent.table.get(a.peerId)?.seq as number

    await a.stop()
    await until(() => !b.port.peers().includes(a.peerId))
    // The same key and database, as after a process restart.
    const again = await startAgent({ key: a.key, dbPath: a.dbPath, bootstrap: [tcpAddr(b.libp2p)] })
    expect(again.peerId).toBe(a.peerId)
    await until(() => (b.agent.table.get(a.peerId)?.seq ?? 0) > before)
    expect(b.agent.table.get(a.peerId)?.seq).toBeGreaterThan(before)
  })
})
